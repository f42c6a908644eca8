"""Few-step distillation: the target algebra, the teacher's ODE segments, and a student that learns."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

import genvision as gv
from genvision import data, seeding
from genvision.families.diffusion import losses, samplers, schedules
from genvision.families.diffusion.distill import student_config
from genvision.metrics.evaluate import _inapplicable
from genvision.model_dir import parent_dir, read_config, save_model_dir

TINY = dict(
    image_size=8, channels=1, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, num_train_timesteps=20
)


def exact_denoiser(mu, s):
    """E[x0 | x_t] for N(mu, s^2) data, with per-image noise levels sigma (a (B,) tensor)."""

    def denoise(x, sigma):
        a = schedules.alpha_bar_of(sigma.double()).view(-1, 1, 1, 1)
        return (mu + a.sqrt() * s**2 / (a * s**2 + 1 - a) * (x.double() - a.sqrt() * mu)).float()

    return denoise


def gaussian_flow(x, a_from, a_to, mu, s):
    """Exact probability-flow map of N(mu, s^2) data from level a_from to a_to (a = 1: clean)."""
    z = (x.double() - a_from.sqrt() * mu) / (a_from * s**2 + 1 - a_from).sqrt()
    return a_to.sqrt() * mu + (a_to * s**2 + 1 - a_to).sqrt() * z


# ----------------------------------------------------------------------------- the target
def test_ddim_step_with_the_target_x0_lands_on_the_given_point():
    g = torch.Generator().manual_seed(0)
    xt, xs = (
        torch.randn(6, 1, 4, 4, generator=g, dtype=torch.float64),
        torch.randn(6, 1, 4, 4, generator=g, dtype=torch.float64),
    )
    a_t = torch.tensor([0.01, 0.2, 0.5, 0.7, 0.9, 0.3], dtype=torch.float64).view(-1, 1, 1, 1)
    a_s = torch.tensor([0.05, 0.4, 0.9, 0.95, 1.0, 1.0], dtype=torch.float64).view(-1, 1, 1, 1)
    x0 = losses.ddim_x0_target(xt, xs, a_t, a_s)
    eps = losses.eps_from_x0(x0, xt, a_t)
    landed = a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps  # one DDIM step (eta = 0)
    torch.testing.assert_close(landed, xs, rtol=0, atol=1e-9)
    torch.testing.assert_close(x0[4:], xs[4:])  # the clean end: x0 is where the teacher landed


# ----------------------------------------------------------------------------- the teacher's segments
def test_ode_segment_follows_the_exact_flow_at_second_order():
    """Every segment of a 10-step student grid at once (per-image timesteps), against the exact flow."""
    T, mu, s = 1000, 0.3, 0.6
    sig = schedules.sigmas(schedules.alpha_bar("cosine", T))
    den = exact_denoiser(mu, s)
    grid = samplers.grid("ddim", sig, 10)
    s_from, s_to = grid[:-1].repeat(400), grid[1:].repeat(400)
    x = torch.randn(len(s_from), 1, 2, 2, generator=torch.Generator().manual_seed(0))
    a_from, a_to = schedules.alpha_bar_of(s_from), schedules.alpha_bar_of(s_to)
    exact = gaussian_flow(x, a_from.view(-1, 1, 1, 1), a_to.view(-1, 1, 1, 1), mu, s)
    errors = []
    for calls in (8, 16, 32):
        out = samplers.ode_segment(den, x, s_from, s_to, calls, sig)
        errors.append((out.double() - exact).abs().max().item())
    assert errors[-1] < 3e-3, errors
    assert errors[0] / errors[1] > 2 and errors[1] / errors[2] > 2.5, errors  # second order: ~4x per halving


def test_ode_segment_to_the_clean_end_returns_the_last_x0_and_an_empty_segment_is_identity():
    T = 50
    sig = schedules.sigmas(schedules.alpha_bar("cosine", T))
    x = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    seen = []

    def den(z, sigma):
        seen.append(sigma.tolist())
        return 0.5 * z + sigma.view(-1, 1, 1, 1).float() / 100

    same = samplers.ode_segment(den, x, sig[[10, 0, 49]], sig[[10, 0, 49]], 3, sig)
    torch.testing.assert_close(same, x)
    seen.clear()
    out = samplers.ode_segment(den, x, sig[[0, 0, 0]], torch.zeros(3, dtype=torch.float64), 2, sig)
    assert seen[-1] == sig[[0, 0, 0]].tolist()
    # x0 of the call at the lowest level, from x (the first call stays put)
    torch.testing.assert_close(out, 0.5 * x + sig[0].float() / 100)
    with pytest.raises(ValueError, match="sigma_from >= sigma_to"):
        samplers.ode_segment(den, x, sig[[1, 2, 3]], sig[[2, 2, 2]], 2, sig)
    with pytest.raises(ValueError, match="calls must be"):
        samplers.ode_segment(den, x, sig[[1, 2, 3]], sig[[0, 0, 0]], 0, sig)


# ----------------------------------------------------------------------------- the student
def make_teacher(directory, seed=0):
    """A tiny random-weight ``ddpm`` saved as a model directory: its ODE is as good a target as any."""
    model = gv.create("ddpm", **TINY)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    save_model_dir(model, directory)
    return model


def teacher_reference(teacher, n, seed):
    """The teacher's probability-flow ODE solved with every training step (what the student imitates)."""
    return teacher.sample(n, seed=seed, sampler="dpm++2m", steps=teacher.config.num_train_timesteps)


def test_student_starts_from_the_teacher_and_its_two_steps_approach_the_teachers_ode(tmp_path):
    teacher = make_teacher(tmp_path / "teacher")
    out = gv.distill(
        tmp_path / "teacher",
        tmp_path / "student",
        sampling_steps=2,
        teacher_calls=4,
        steps=30,
        lr=1e-2,
        batch_size=64,
        ema_half_life=0,
        progress=False,
    )
    student = gv.load(out)
    c = student.config
    assert student.registry_name == "ddpm-student"
    assert (c.sampler, c.steps, c.eta, c.clip_x0, c.teacher_calls) == ("ddim", 2, 0.0, False, 4)
    ref = read_config(out)["parents"]["teacher"]
    assert parent_dir(out, "teacher", ref) == (tmp_path / "teacher").resolve()
    assert c.base_channels == TINY["base_channels"] and c.num_train_timesteps == 20

    ref = teacher_reference(teacher, 256, seed=5)
    before = gv.load(tmp_path / "teacher")  # what the student started from, sampled its way
    before_err = (before.sample(256, seed=5, sampler="ddim", steps=2) - ref).pow(2).mean().item()
    after_err = (student.sample(256, seed=5) - ref).pow(2).mean().item()
    assert after_err < 0.4 * before_err, (before_err, after_err)  # measured: 0.13x

    shutil.rmtree(tmp_path / "teacher")  # sampling a student never needs its teacher
    gv.load(out).sample(2, seed=0)
    # its network is trained at the student's timesteps only: no likelihood bound is claimed
    reasons = _inapplicable(["fid", "bpd", "nll"], gv.load(out), data.load("digits", "train"), out)
    assert set(reasons) == {"bpd", "nll"} and "distilled student" in reasons["bpd"]  # n/a in a full report
    with pytest.raises(ValueError, match="distilled student"):
        gv.evaluate(out, data="digits", metrics="bpd")


def test_a_resumed_distillation_equals_an_uninterrupted_one(tmp_path):
    make_teacher(tmp_path / "teacher")
    common = dict(sampling_steps=3, teacher_calls=2, batch_size=32, progress=False, save_every=2)
    gv.distill(tmp_path / "teacher", tmp_path / "straight", steps=4, **common)
    gv.distill(tmp_path / "teacher", tmp_path / "split", steps=2, **common)
    with pytest.raises(ValueError, match="pass that teacher"):
        gv.distill(tmp_path / "straight", tmp_path / "split", steps=4, resume=True)
    gv.distill(tmp_path / "teacher", tmp_path / "split", steps=4, resume=True, progress=False)
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_distillation_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(ValueError, match="sampler=ddim"):
        gv.create("ddpm-student", sampler="dpm++2m")
    with pytest.raises(ValueError, match="teacher_calls"):
        gv.create("ddpm-student", teacher_calls=0)
    with pytest.raises(ValueError, match="needs its teacher"):
        gv.create("ddpm-student", **TINY).loss(torch.zeros(2, 1, 8, 8))
    vae = gv.create("vae", image_size=8, channels=1)
    save_model_dir(vae, tmp_path / "vae")
    with pytest.raises(ValueError, match="needs a diffusion model"):
        gv.distill(tmp_path / "vae", tmp_path / "out", steps=1)
    teacher = make_teacher(tmp_path / "teacher")
    with pytest.raises(ValueError, match="another network"):
        gv.create("ddpm-student", parents={"teacher": teacher}, **{**TINY, "base_channels": 16})
    with pytest.raises(ValueError, match="objective"):
        gv.create("ddpm-student", parents={"teacher": teacher}, **{**TINY, "objective": "eps"})
    student = gv.create("ddpm-student", parents={"teacher": teacher}, **student_config(teacher, 2, 2))
    with pytest.raises(ValueError, match="itself a distilled model"):
        gv.create("ddpm-student", parents={"teacher": student}, **student_config(teacher, 2, 2))
    assert torch.isfinite(
        student.loss(torch.zeros(2, 1, 8, 8), generator=seeding.image_generators(2, 0))["loss"]
    )


def test_a_conditional_teacher_distils_and_the_student_takes_labels(tmp_path):
    teacher = gv.create("ddpm-cond", **TINY, num_classes=10)
    save_model_dir(teacher, tmp_path / "teacher")
    out = gv.distill(
        tmp_path / "teacher", tmp_path / "s", sampling_steps=3, steps=2, batch_size=16, progress=False
    )
    student = gv.load(out)
    assert student.config.conditional and student.config.steps == 3
    x = student.sample(4, y=[0, 1, 2, 3], seed=0)
    assert x.shape == (4, 1, 8, 8) and torch.isfinite(x).all()


def test_a_teacher_trained_on_resized_data_distils_on_it_resized_alike(tmp_path):
    """A run on data resized with --set image_size (digits 8x8 at 16x16 here, emoji 64x64 at 32x32
    in use) distils on the same data at the same size, not at the data's native one."""
    quiet = {"progress": False, "sample_every": 0, "save_every": 0}
    config = {**TINY, "image_size": 16}
    gv.train("ddpm", data="digits", out=tmp_path / "t", steps=2, batch_size=16, model_config=config, **quiet)
    out = gv.distill(tmp_path / "t", tmp_path / "s", method="consistency", steps=1, batch_size=16, **quiet)
    assert read_config(out)["data"]["image_size"] == 16
    assert gv.load(out).sample(2, seed=0).shape == (2, 1, 16, 16)
