"""Trainer behaviour through the public API: NaN guard, EMA, config, run directories."""

from __future__ import annotations

import json
import time

import pytest
import torch
from gvtest import TINY_DDPM

import genvision as gv
from genvision.families.diffusion.consistency import CONSISTENCY_TRAIN_DEFAULTS
from genvision.training import trainer
from genvision.training.config import TrainConfig
from genvision.training.ema import EMA, WARMUP_ONLY
from genvision.training.order import BatchStream
from genvision.training.trainer import TrainingError


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path):
    model = gv.create("ddpm", **TINY_DDPM, levels=17, num_classes=10)
    real_loss = model.loss
    calls = {"n": 0}

    def loss(x, y=None, phase="main", generator=None):
        calls["n"] += 1
        out = real_loss(x, y, phase=phase, generator=generator)
        if calls["n"] >= 8:
            out["loss"] = out["loss"] * float("nan")
        return out

    model.loss = loss
    with pytest.raises(TrainingError, match=r"loss became nan at step \d+.*checkpoint \(step 5\)"):
        gv.train(
            model,
            data="digits",
            out=tmp_path / "run",
            steps=20,
            save_every=5,
            sample_every=0,
            batch_size=8,
            progress=False,
        )
    restored = gv.load(tmp_path / "run")
    assert all(torch.isfinite(p).all() for p in restored.parameters())
    state = json.loads((tmp_path / "run" / "config.json").read_text())
    assert state["status"] == "training"  # never marked finished


def test_ema_half_life_is_in_images():
    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([("p", p)], half_life=64)
    ema.updates = 10**6  # past warm-up
    with torch.no_grad():
        p.fill_(1.0)
    ema.update(images_per_step=64)  # one half-life: halfway to the new value
    assert torch.allclose(ema.shadow[0], torch.full((3,), 0.5))
    ema2 = EMA([("p", p)], half_life=64)
    ema2.shadow[0].zero_()
    ema2.updates = 10**6
    for _ in range(4):
        ema2.update(images_per_step=16)  # four quarter-half-lives: the same decay
    assert torch.allclose(ema2.shadow[0], torch.full((3,), 0.5), atol=1e-6)


@pytest.mark.parametrize("updates", [30, 150, 5000])
def test_an_ema_with_a_half_life_beyond_the_run_averages_its_last_tenth(updates):
    """With WARMUP_ONLY the warm-up bound alone sets the decay: for a weight that moves one unit
    per update, the average sits where the weight was at 0.9 of the run, whatever its length; a
    half-life of 2,000 images at batch 128 sits 22 updates behind in a long run."""
    p = torch.nn.Parameter(torch.zeros(1))
    ema = EMA([("p", p)], half_life=WARMUP_ONLY)
    for k in range(1, updates + 1):
        with torch.no_grad():
            p.fill_(float(k))
        ema.update(images_per_step=128)
    assert ema.shadow[0].item() == pytest.approx(0.9 * updates, rel=1e-3)


def test_consistency_students_average_over_the_last_tenth_of_their_run():
    """Their default half-life is WARMUP_ONLY, written as a literal: a family may not import the
    fit loop."""
    assert CONSISTENCY_TRAIN_DEFAULTS["ema_half_life"] == WARMUP_ONLY


def test_batch_stream_visits_every_image_once_per_epoch():
    s = BatchStream(10, seed=3)
    first = torch.cat([s.take(4), s.take(4), s.take(2)])
    assert sorted(first.tolist()) == list(range(10))
    again = BatchStream(10, seed=3, epoch=0, offset=4).take(6)
    assert torch.equal(again, first[4:])


@pytest.mark.parametrize(
    "values, match",
    [
        ({"steps": 0}, "--steps must be >= 1"),
        ({"steps": 5, "minutes": 1.0}, "give one of"),
        ({"lr": -1.0}, "--lr must be a positive"),
        ({"precision": "fp8"}, "--precision must be"),
        ({"batch_size": 0}, "--batch-size"),
    ],
)
def test_bad_train_config_is_one_line_error(values, match):
    with pytest.raises(ValueError, match=match) as e:
        TrainConfig(**values)
    assert "\n" not in str(e.value)


def test_existing_run_directory_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    kwargs = dict(
        data="digits", steps=1, batch_size=8, sample_every=0, progress=False, model_config=TINY_DDPM
    )
    gv.train("ddpm", out=out, **kwargs)
    with pytest.raises(FileExistsError, match="--resume .* --overwrite"):
        gv.train("ddpm", out=out, **kwargs)
    gv.train("ddpm", out=out, overwrite=True, **kwargs)
    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a genvision run directory"):
        gv.train("ddpm", out=other, overwrite=True, **kwargs)
    assert (other / "precious.txt").read_text() == "keep me"


def test_run_directory_layout_and_log(tmp_path):
    out = gv.train(
        "ddpm",
        data="digits",
        out=tmp_path / "run",
        steps=4,
        batch_size=8,
        log_every=2,
        sample_every=2,
        progress=False,
        model_config=TINY_DDPM,
    )
    for name in (
        "config.json",
        "model.safetensors",
        "training_state/state.safetensors",
        "metrics.jsonl",
        "samples/step_000002.png",
        "grid.png",
        "report.md",
        "loss.png",
    ):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["registry_name"] == "ddpm" and cfg["family"] == "diffusion"
    assert cfg["model_config"]["image_size"] == 8 and cfg["model_config"]["levels"] == 17
    assert cfg["data"]["spec"] == "digits" and cfg["train_config"]["steps"] == 4
    records = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert records[-1]["img_per_s"] > 0 and records[-1]["flops_per_image"] > 0
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)


def _records(out):
    return [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]


class _Clock:
    """A stand-in for the trainer's ``time``: every reading is 0.25 s after the previous one."""

    sleep = staticmethod(time.sleep)

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.25
        return self.now


def test_length_in_images_and_minutes(tmp_path, monkeypatch):
    common = dict(
        data="digits", batch_size=16, sample_every=0, log_every=1, progress=False, model_config=TINY_DDPM
    )
    out = gv.train("ddpm", out=tmp_path / "img", images=40, **common)
    assert _records(out)[-1]["images"] == 48  # ceil(40 / 16) steps of 16 images
    # --minutes counts the trainer's clock, whatever the machine's speed: each step reads it twice
    # around the step and twice around the hooks (0.5 s a step), so 0.03 min = 1.8 s ends after
    # step 4; its record is written between the two, at 1.75 s
    monkeypatch.setattr(trainer, "time", _Clock())
    out = gv.train("ddpm", out=tmp_path / "min", minutes=0.03, **common)
    last = _records(out)[-1]
    assert last["step"] == 4 and last["elapsed"] == 1.75, last


def test_bf16_autocast_trains(tmp_path):
    out = gv.train(
        "ddpm",
        data="digits",
        out=tmp_path / "bf16",
        steps=3,
        batch_size=8,
        precision="bf16",
        sample_every=0,
        log_every=1,
        progress=False,
        model_config=TINY_DDPM,
    )
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in _records(out))
    assert json.loads((out / "config.json").read_text())["train_config"]["precision"] == "bf16"


def test_tensorboard_logs_the_same_scalars_as_metrics_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = gv.train(
        "ddpm",
        data="digits",
        out=tmp_path / "tb",
        steps=4,
        batch_size=8,
        log_every=2,
        sample_every=0,
        progress=False,
        tensorboard=True,
        model_config=TINY_DDPM,
    )
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == [r["step"] for r in logged] == [2, 4]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in logged], rel=1e-6)


def test_tensorboard_without_the_package_is_a_one_line_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if absent
    with pytest.raises(ValueError, match="--tensorboard needs the tensorboard package; pip install"):
        gv.train(
            "ddpm",
            data="digits",
            out=tmp_path / "tb",
            steps=1,
            batch_size=8,
            sample_every=0,
            progress=False,
            tensorboard=True,
            model_config=TINY_DDPM,
        )
