"""Flow matching, EDM and consistency models: their parameterisations, losses and sampling glue."""

from __future__ import annotations

import math

import pytest
import torch
from families.diffusion.tiny_configs import TINY_NET
from gvtest import count_net_calls

import genvision as gv
from genvision.families.diffusion import consistency, samplers


def tiny(name, seed=0, **overrides):
    """A tiny model with random (not zero-initialised) output layer, so its outputs depend on the input."""
    torch.manual_seed(seed)
    model = gv.create(name, **{"levels": 17, **TINY_NET, **overrides})
    torch.nn.init.normal_(model.net.conv_out.weight, std=0.05)
    return model


def test_edm_preconditioning_identities():
    model = tiny("edm")
    sd = model.config.sigma_data
    sigma = torch.tensor([0.002, 0.1, 0.5, 2.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, _ = model.precondition(sigma)
    # the network's input has unit variance for data of standard deviation sigma_data
    assert torch.allclose(c_in**2 * (sd**2 + sigma**2), torch.ones_like(sigma))
    # c_skip^2 sd^2 + c_out^2 ... : the skip and the output split the target's variance exactly
    assert torch.allclose(c_skip * sd**2 + c_out**2, torch.full_like(sigma, sd**2))
    # at the clean end the denoiser passes its input through; at high noise it is the network's
    assert c_skip[0] == pytest.approx(1, abs=1e-4) and c_skip[-1] < 1e-4
    # the effective training target (x0 - c_skip x) / c_out has unit variance for Gaussian data
    g = torch.Generator().manual_seed(0)
    x0 = sd * torch.randn(200_000, generator=g, dtype=torch.float64)
    for i in range(len(sigma)):
        x = x0 + sigma[i] * torch.randn(200_000, generator=g, dtype=torch.float64)
        target = (x0 - c_skip[i] * x) / c_out[i]
        assert target.var().item() == pytest.approx(1, rel=0.02)


def test_flow_matching_denoiser_reads_the_velocity_at_the_right_point():
    # feed the network the exact velocity eps - x0 and the clean image comes back
    model = tiny("flow-matching")
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    eps = torch.randn(4, 1, 8, 8)
    t = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64)
    sigma = t / (1 - t)
    tt = t.float().view(-1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * eps
    vp = xt * ((1 + sigma**2).sqrt() / (1 + sigma)).float().view(-1, 1, 1, 1) ** -1
    seen = {}

    def net(x, time, y):
        seen["x"], seen["t"] = x, time
        return eps - x0

    model.net.forward = net
    out = model.denoise_x0(vp, sigma)
    assert torch.allclose(seen["x"], xt, atol=1e-5)
    assert torch.allclose(seen["t"], (t * 1000).float(), atol=1e-3)
    assert torch.allclose(out, x0, atol=1e-5)


def test_flow_matching_loss_is_the_velocity_error_with_per_image_seeds():
    model = tiny("flow-matching")
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    gens = [torch.Generator().manual_seed(i) for i in range(6)]
    a = model.loss(x, generator=gens)["loss"].detach()
    gens = [torch.Generator().manual_seed(i) for i in range(6)]
    b = (
        model.loss(x[:3], generator=gens[:3])["loss"] + model.loss(x[3:], generator=gens[3:])["loss"]
    ).detach() / 2
    assert float(a) == pytest.approx(float(b), rel=1e-5)


@pytest.mark.parametrize("name", ["flow-matching", "edm"])
def test_time_sampling_and_levels_follow_the_config(name):
    model = tiny(name)
    lo, hi = model.sigma_range()
    levels = model.sampling_levels("heun", 9)
    assert len(levels) == samplers.heun_intervals(9) + 1 and levels[-1] == 0
    assert levels[0] == pytest.approx(hi) and levels[0] <= hi + 1e-9
    karras = model.sampling_levels("edm", 9)
    assert karras[-2] == pytest.approx(lo)


@pytest.mark.parametrize("name", ["flow-matching", "edm", "ddpm"])
@pytest.mark.parametrize("sampler", ["euler", "heun", "edm", "dpm++2m", "ddim"])
def test_every_sampler_runs_on_every_objective_with_exact_calls(name, sampler):
    overrides = {"num_train_timesteps": 50} if name == "ddpm" else {}
    model = tiny(name, **overrides)
    calls = count_net_calls(model)
    x = model.sample(3, seed=0, sampler=sampler, steps=6)
    assert x.shape == (3, 1, 8, 8) and torch.isfinite(x).all()
    assert calls["n"] == 6
    again = model.sample(3, seed=0, sampler=sampler, steps=6)
    assert torch.equal(x, again)


def test_consistency_boundary_condition_and_sampling():
    teacher = tiny("edm")
    student = gv.create(
        "edm-consistency", parents={"teacher": teacher}, **consistency.student_config(teacher, intervals=6)
    )
    student.init_from_data(None)
    torch.nn.init.normal_(student.net.conv_out.weight, std=0.05)
    lo = student.sigma_range()[0]
    x = torch.randn(4, 1, 8, 8)
    # f(x, sigma_min) = x: the VE form of the VP-scaled x at sigma_min
    assert torch.allclose(student.denoise_x0(x, lo), x * math.sqrt(1 + lo**2), atol=1e-6)
    one = student.sample(4, seed=0)
    two = student.sample(4, seed=0, steps=2)
    assert one.shape == two.shape == (4, 1, 8, 8) and not torch.equal(one, two)
    with pytest.raises(ValueError, match="steps must be in 1..6"):
        student.sample(2, seed=0, steps=7)
    with pytest.raises(ValueError, match="does not sample with heun"):
        student.sample(2, seed=0, sampler="heun")


def test_consistency_loss_is_finite_and_trains_the_student_only():
    teacher = tiny("flow-matching")
    student = gv.create(
        "flow-matching-consistency",
        parents={"teacher": teacher},
        **consistency.student_config(teacher, intervals=6),
    )
    student.init_from_data(None)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    gens = [torch.Generator().manual_seed(i) for i in range(4)]
    out = student.loss(x, generator=gens)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def test_a_consistency_students_grid_starts_at_grid_top_and_older_students_keep_the_teachers():
    teacher = tiny("flow-matching")
    lo, hi = teacher.sigma_range()
    assert hi > 500  # a flow teacher's top level: t_max / (1 - t_max)

    def student(**fields):
        config = {**consistency.student_config(teacher, intervals=6), **fields}
        return gv.create("flow-matching-consistency", parents={"teacher": teacher}, **config)

    new = student()
    assert new.config.grid_top == consistency.GRID_TOP and new.config.lr == consistency.STUDENT_LR
    expected = samplers.karras_levels(lo, consistency.GRID_TOP, 6)
    assert torch.equal(new.grid(), expected) and new.grid()[0] == consistency.GRID_TOP
    # one-step sampling starts at the grid's top; the two-step middle level is a grid level
    assert new.sampling_levels("consistency", 2).tolist() == [expected[0], expected[3], 0.0]
    older = student(grid_top=0.0)  # a config saved before the field: the teacher's whole range
    assert torch.equal(older.grid(), samplers.karras_levels(lo, hi, 6))
    above = student(grid_top=10 * hi)  # never above the teacher's top
    assert torch.equal(above.grid(), older.grid())
    with pytest.raises(ValueError, match="grid_top must be above the lowest level"):
        student(grid_top=lo / 2)


def test_a_consistency_student_refuses_a_teacher_of_another_objective():
    flow, edm = tiny("flow-matching"), tiny("edm")
    with pytest.raises(ValueError, match="distils a FlowMatching"):
        gv.create("flow-matching-consistency", parents={"teacher": edm}, **consistency.student_config(flow))


def test_bad_continuous_configs_are_one_line_errors():
    from genvision.registry import config_for

    for name, field, value, match in [
        ("flow-matching", "time_sampling", "beta", "time_sampling must be one of"),
        ("flow-matching", "t_max", 1.0, "t_max must be in"),
        ("edm", "sigma_min", 100.0, "sigma_min < sigma_max"),
        ("edm", "sigma_data", 0.0, "sigma_data must be > 0"),
        ("edm-consistency", "sampler", "heun", "samples with sampler=consistency"),
        ("edm-consistency", "steps", 30, "steps must be in 1..intervals"),
        ("edm-consistency", "grid_top", -1.0, "grid_top must be >= 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            config_for(name, **{field: value})
    model = tiny("flow-matching")
    with pytest.raises(ValueError, match="does not sample with consistency"):
        model.sample(2, seed=0, sampler="consistency")
