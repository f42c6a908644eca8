"""Latent diffusion: the round trip through the autoencoder, the latents' scale and cache, and the
staged run (``genvision train ldm``: the autoencoder first, in ``RUN/autoencoder``)."""

from __future__ import annotations

import json

import pytest
import torch
from families.diffusion.tiny_configs import TINY_AE, TINY_LATENT
from gvtest import count_net_calls

import genvision as gv
from genvision import data, io
from genvision.families.diffusion import latent
from genvision.model_dir import save_model_dir

QUIET = {"progress": False, "sample_every": 0, "save_every": 0}
NET = {k: v for k, v in TINY_LATENT.items() if k not in ("latent_channels", "downsample")}


@pytest.fixture
def autoencoder_dir(tmp_path):
    torch.manual_seed(0)
    ae = gv.create("autoencoder", levels=17, **TINY_AE)
    save_model_dir(ae, tmp_path / "ae")
    return tmp_path / "ae"


@pytest.mark.parametrize("name", ["ldm", "ldm-cond"])
def test_a_latent_flow_models_learning_rate_and_sampler_follow_the_images_channels(name):
    from genvision import registry

    fields = {"num_classes": 10} if name == "ldm-cond" else {}
    grey = registry.config_for(name, channels=1, image_size=28, **fields)
    rgb = registry.config_for(name, channels=3, image_size=32, **fields)
    assert (grey.lr, rgb.lr) == (1e-3, 2e-3)
    assert (grey.sampler, rgb.sampler, grey.steps, rgb.steps) == ("heun", "edm", 20, 20)
    given = registry.config_for(name, channels=3, image_size=32, sampler="dpm++2m", **fields)
    assert given.sampler == "dpm++2m"
    assert registry.config_for(name, channels=3, image_size=32, lr="5e-4", **fields).lr == 5e-4
    with pytest.raises(ValueError, match="lr must be > 0"):
        registry.config_for(name, channels=3, image_size=32, lr=0.0, **fields)


def test_the_other_latent_models_keep_their_familys_colour_defaults():
    from genvision import registry

    # not measured at the flow models' colour rate and sampler
    assert registry.config_for("ldm-edm", channels=3, image_size=32).lr == 1e-3
    text = registry.config_for("ldm-text", channels=3, image_size=32)
    assert (text.lr, text.sampler) == (1e-3, "heun")
    # a student samples with its own sampler whatever the teacher's
    assert registry.config_for("ldm-consistency", channels=3, image_size=32).sampler == "consistency"


def test_latents_are_cached_scaled_to_unit_variance_and_decoded_back(autoencoder_dir, tmp_path, monkeypatch):
    model = gv.create("ldm", levels=17, autoencoder=str(autoencoder_dir), **TINY_LATENT)
    assert model.noise_shape == (2, 4, 4)
    train = data.load("digits", "train")
    ds = model.training_data(train, tmp_path / "run")
    assert len(ds) == len(train) and ds.batch(torch.arange(5))[0].shape == (5, 2, 4, 4)
    assert ds.latents.std().item() == pytest.approx(1.0, rel=1e-4)
    assert (tmp_path / "run" / latent.CACHE_FILE).is_file()
    # the same autoencoder: the cache is read, not the images encoded again
    monkeypatch.setattr(type(model), "encode_dataset", lambda *a: pytest.fail("encoded twice"))
    again = model.training_data(train, tmp_path / "run")
    assert torch.equal(again.latents, ds.latents)
    # decoding the scaled latents gives the autoencoder's reconstructions
    ae = model.parent("autoencoder")
    x, _ = train.batch(torch.arange(4))
    z = ds.latents[:4]
    assert torch.allclose(model.finish(z), ae.decode(ae.encode(x)), atol=1e-5)
    assert torch.allclose(model.reconstruct(x), ae.reconstruct(x))
    out = model.sample(3, seed=0)
    assert out.shape == (3, 1, 8, 8) and out.min() >= -1 and out.max() <= 1


def test_an_autoencoder_of_another_shape_is_a_one_line_error(autoencoder_dir):
    with pytest.raises(ValueError, match="set latent_channels / downsample"):
        gv.create("ldm", levels=17, autoencoder=str(autoencoder_dir), **{**TINY_LATENT, "latent_channels": 3})
    with pytest.raises(ValueError, match="needs an autoencoder"):
        gv.create("ldm", levels=17, autoencoder=gv.create("vae", levels=17), **TINY_LATENT)


def test_train_ldm_trains_its_autoencoder_first_then_resumes_and_samples(tmp_path):
    out = tmp_path / "ldm"
    config = {**NET, "downsample": 1, "latent_channels": 2}
    gv.train("ldm", data="digits", out=out, steps=8, batch_size=16, model_config=config, **QUIET)
    plan = json.loads((out / "stages.json").read_text())
    assert plan["registry_name"] == "ldm" and plan["train_values"]["steps"] == 8
    assert plan["ae_fraction"] == 0.25  # grey: a quarter, recorded with the plan
    ae_meta = json.loads((out / "autoencoder" / "config.json").read_text())
    meta = json.loads((out / "config.json").read_text())
    assert ae_meta["registry_name"] == "autoencoder" and ae_meta["train_config"]["steps"] == 2  # a quarter
    assert meta["registry_name"] == "ldm" and meta["train_config"]["steps"] == 6
    assert meta["parents"]["autoencoder"]["path"] == "autoencoder"
    assert (out / latent.CACHE_FILE).is_file()
    model = gv.load(out)
    assert model.latent_scale.item() != 1.0
    x = model.sample(4, seed=0)
    assert x.shape == (4, 1, 8, 8)
    # a finished staged run resumes to the same place
    gv.train(None, out=out, resume=True, **QUIET)
    assert torch.equal(gv.load(out).sample(4, seed=0), x)
    # --overwrite deletes both stages (genvision wrote them) and nothing else
    (out / "notes.txt").write_text("mine")
    gv.train(
        "ldm", data="digits", out=out, steps=4, batch_size=16, model_config=config, overwrite=True, **QUIET
    )
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "autoencoder" / "config.json").read_text())["train_config"]["steps"] == 1


def test_a_longer_length_on_resume_extends_a_staged_runs_latent_model(tmp_path):
    out = tmp_path / "ldm"
    config = {**NET, "downsample": 1, "latent_channels": 2}
    gv.train("ldm", data="digits", out=out, steps=8, batch_size=16, model_config=config, **QUIET)
    ae_before = (out / "autoencoder" / "model.safetensors").read_bytes()
    # a damaged split is a one-line error, not a traceback
    plan = json.loads((out / "stages.json").read_text())
    for bad in ("abc", 5):
        (out / "stages.json").write_text(json.dumps({**plan, "ae_fraction": bad}))
        with pytest.raises(ValueError, match="stages.json is damaged"):
            gv.train(None, out=out, resume=True, steps=12, **QUIET)
    # a plan written before stages.json recorded the split resumes with the quarter it used then
    del plan["ae_fraction"]
    (out / "stages.json").write_text(json.dumps(plan))
    for bad, words in (({"steps": 2}, "beyond the autoencoder"), ({"minutes": 1.0}, "give --steps")):
        with pytest.raises(ValueError, match=words):
            gv.train(None, out=out, resume=True, **bad, **QUIET)
    gv.train(None, out=out, resume=True, steps=12, **QUIET)  # the whole run: 2 + 10
    meta = json.loads((out / "config.json").read_text())
    assert meta["status"] == "finished" and meta["train_config"]["steps"] == 10
    assert json.loads((out / "stages.json").read_text())["extended_to"] == {"steps": 12}
    assert (out / "autoencoder" / "model.safetensors").read_bytes() == ae_before
    assert max(r.get("step", 0) for r in io.read_jsonl(out / "metrics.jsonl")) == 10


def test_a_staged_run_interrupted_in_stage_one_resumes_there(tmp_path):
    out = tmp_path / "ldm"
    config = {**NET, "downsample": 1, "latent_channels": 2}
    gv.train("ldm", data="digits", out=out, steps=8, batch_size=16, model_config=config, **QUIET)
    # undo stage 2 and mark stage 1 unfinished: as if stopped during the autoencoder
    for name in ("config.json", "model.safetensors", "training_state", "latents.safetensors"):
        path = out / name
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    ae_meta = json.loads((out / "autoencoder" / "config.json").read_text())
    ae_meta["status"] = "interrupted"
    (out / "autoencoder" / "config.json").write_text(json.dumps(ae_meta))
    gv.train(None, out=out, resume=True, **QUIET)
    assert json.loads((out / "config.json").read_text())["status"] == "finished"
    assert gv.load(out).sample(2, seed=0).shape == (2, 1, 8, 8)


def test_a_given_autoencoder_fixes_the_latent_fields(autoencoder_dir, tmp_path):
    out = gv.train(
        "ldm",
        data="digits",
        out=tmp_path / "r",
        steps=2,
        batch_size=16,
        model_config={**NET, "autoencoder": str(autoencoder_dir)},
        **QUIET,
    )
    config = json.loads((out / "config.json").read_text())["model_config"]
    assert config["latent_channels"] == 2 and config["downsample"] == 1
    assert not (out / "autoencoder").exists()


def test_an_ldm_run_distils_to_a_one_step_latent_consistency_student(tmp_path):
    """``genvision distill RUN --method consistency`` on an ldm run: the student learns on the
    teacher's latents at the teacher's scale, decodes with the teacher's autoencoder (its parent
    for sampling; the teacher is needed only to train), and samples in one or two calls."""
    import math

    from genvision.families.diffusion import consistency
    from genvision.model_dir import parent_dir

    run = tmp_path / "ldm"
    config = {**NET, "downsample": 1, "latent_channels": 2}
    gv.train("ldm", data="digits", out=run, steps=8, batch_size=16, model_config=config, **QUIET)
    with pytest.raises(
        ValueError, match="a latent model; progressive distillation needs a diffusion model in pixel"
    ):
        gv.distill(run, tmp_path / "p", steps=1)
    out = gv.distill(run, tmp_path / "s", method="consistency", steps=3, batch_size=16, **QUIET)
    meta = json.loads((out / "config.json").read_text())
    assert meta["registry_name"] == "ldm-consistency"
    assert parent_dir(out, "teacher", meta["parents"]["teacher"]) == run.resolve()
    assert parent_dir(out, "autoencoder", meta["parents"]["autoencoder"]) == (run / "autoencoder").resolve()
    teacher, student = gv.load(run), gv.load(out)
    assert not student.has_parent("teacher")  # sampling needs the autoencoder only
    assert student.latent_scale.item() == teacher.latent_scale.item() != 1.0
    # f(z, sigma_min) = z on the latents (VE form), whatever the network says
    lo = student.sigma_range()[0]
    z = torch.randn(3, *student.noise_shape)
    assert torch.allclose(student.denoise_x0(z, lo), z * math.sqrt(1 + lo**2), atol=1e-5)
    calls = count_net_calls(student)
    one, two = student.sample(4, seed=0), student.sample(4, seed=0, steps=2)
    assert calls["n"] == 3 and one.shape == two.shape == (4, 1, 8, 8) and not torch.equal(one, two)
    assert torch.equal(student.sample(4, seed=0), one)
    # a student built on another autoencoder than its teacher's is refused
    other = gv.create("autoencoder", levels=17, **TINY_AE)
    with pytest.raises(ValueError, match="not the teacher's"):
        gv.create(
            "ldm-consistency",
            parents={"teacher": teacher, "autoencoder": other},
            **consistency.student_config(teacher, intervals=4),
        )


def test_latent_edm_preconditions_for_unit_variance_latents():
    """EDM's c_in scales by 1 / sqrt(sigma^2 + sigma_data^2): sigma_data is the data's std, 1 for
    the scaled latents (0.5 for images in [-1, 1])."""
    from genvision.registry import config_for

    assert config_for("ldm-edm").sigma_data == 1.0 and config_for("edm").sigma_data == 0.5
