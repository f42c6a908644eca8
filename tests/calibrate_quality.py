"""Measure every quality test's figure on its own small config for several training seeds.

Not a test (pytest collects only ``test_*.py``): the numbers it prints are the calibration in
``tests/calibration.json``, from which the quality tests' bars are set. Each run is the test's
own fixture with ``seed=s`` (the training seed), measured exactly as the test measures it, one
run at a time on one thread.

    PYTHONPATH=src:tests python tests/calibrate_quality.py [family ...] [--seeds 0,1,2,3,4]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

import genvision as gv
from genvision import data, seeding
from genvision.families.base import sample_in_batches
from genvision.metrics import judges
from genvision.metrics.baseline import independent_pixel_bpd, independent_pixel_samples
from genvision.metrics.evaluate import domain_fid, evaluate, quantise

QUIET = {"progress": False, "sample_every": 0}


def _splits():
    return data.load("digits", "train"), data.load("digits", "test")


def ddpm(out: Path, seed: int) -> dict:
    """tests/test_quality.py."""
    gv.train(
        "ddpm",
        data="digits",
        out=out,
        steps=400,
        batch_size=64,
        lr=2e-3,
        ema_half_life=4000,
        save_every=0,
        seed=seed,
        model_config={"base_channels": 16, "num_res_blocks": 1, "steps": 20},
        **QUIET,
    )
    train, test = _splits()
    baseline = independent_pixel_samples(train, 500, seed=0)
    base_fid, _ = domain_fid(baseline, train, test)
    m = evaluate(out, data="digits", n=500)["metrics"]
    judge = judges.get_judge(train, test)
    base_conf = judge.logits(baseline).softmax(-1).max(-1).values.mean().item()
    return {
        "fid": m["fid"]["value"],
        "baseline_fid": base_fid,
        "confidence": m["confidence"]["samples"],
        "baseline_confidence": base_conf,
    }


def _entropy(labels: torch.Tensor) -> float:
    p = torch.bincount(labels, minlength=10).double() / len(labels)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def sngan(out: Path, seed: int) -> dict:
    """tests/families/gan/test_gan_training.py, unconditional."""
    gv.train(
        "sngan",
        data="digits",
        out=out,
        steps=300,
        seed=seed,
        model_config={"base_channels": 32},
        monitor_every=100,
        **QUIET,
    )
    train, test = _splits()
    model = gv.load(out)
    samples = torch.cat([model.sample(500, seed=0), model.sample(500, seed=1)])
    baseline = independent_pixel_samples(train, 1000, seed=0)
    fid, _ = domain_fid(samples, train, test)
    base, _ = domain_fid(baseline, train, test)
    judge = judges.get_judge(train, test)
    entropy = _entropy(judge.logits(quantise(samples, train.levels)).argmax(dim=1))
    base_entropy = _entropy(judge.logits(quantise(baseline, train.levels)).argmax(dim=1))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = [round(r["monitor/class_entropy"], 4) for r in records if "monitor/class_entropy" in r]
    return {
        "fid": fid,
        "baseline_fid": base,
        "entropy": entropy,
        "baseline_entropy": base_entropy,
        "monitor_entropy": curve,
    }


def wgan(out: Path, seed: int) -> dict:
    """tests/families/gan/test_gan_training.py (wgan_run: the textbook WGAN at 4x its preset lr)."""
    gv.train(
        "wgan",
        data="digits",
        out=out,
        steps=300,
        seed=seed,
        model_config={"base_channels": 32, "lr_g": 2e-4, "lr_d": 2e-4},
        monitor_every=100,
        **QUIET,
    )
    train, test = _splits()
    model = gv.load(out)
    samples = torch.cat([model.sample(500, seed=0), model.sample(500, seed=1)])
    fid, _ = domain_fid(samples, train, test)
    judge = judges.get_judge(train, test)
    entropy = _entropy(judge.logits(quantise(samples, train.levels)).argmax(dim=1))
    return {"fid": fid, "entropy": entropy}


def biggan(out: Path, seed: int) -> dict:
    """tests/families/gan/test_gan_training.py (biggan_run: biggan, base_channels 32, 400 steps)."""
    gv.train(
        "biggan",
        data="digits",
        out=out,
        steps=400,
        seed=seed,
        model_config={"base_channels": 32},
        monitor_every=100,
        **QUIET,
    )
    train, test = _splits()
    model = gv.load(out)
    labels = torch.arange(500) % 10
    samples = model.sample(500, y=labels, seed=0)
    judge = judges.get_judge(train, test)
    accuracy = (judge.logits(quantise(samples, 17)).argmax(dim=1) == labels).float().mean().item()
    fid, _ = domain_fid(torch.cat([samples, model.sample(500, y=labels, seed=1)]), train, test)
    return {"accuracy": accuracy, "fid": fid}


def stylegan(out: Path, seed: int) -> dict:
    """tests/families/gan/test_stylegan.py (stylegan_run)."""
    from families.gan.test_stylegan import STEPS, TRAIN

    gv.train("stylegan", data="digits", out=out, steps=STEPS, seed=seed, **TRAIN, **QUIET)
    train, test = _splits()
    model = gv.load(out)
    samples = torch.cat([model.sample(500, seed=0), model.sample(500, seed=1)])
    fid, _ = domain_fid(samples, train, test)
    judge = judges.get_judge(train, test)
    entropy = _entropy(judge.logits(quantise(samples, train.levels)).argmax(dim=1))
    return {"fid": fid, "entropy": entropy}


def sngan_cond(out: Path, seed: int) -> dict:
    """tests/families/gan/test_gan_training.py, conditional."""
    gv.train(
        "sngan-cond",
        data="digits",
        out=out,
        steps=500,
        seed=seed,
        model_config={"base_channels": 32},
        monitor_every=100,
        **QUIET,
    )
    model = gv.load(out)
    labels = torch.arange(500) % 10
    samples = model.sample(500, y=labels, seed=0)
    judge = judges.get_judge(*_splits())
    predicted = judge.logits(quantise(samples, 17)).argmax(dim=1)
    return {"accuracy": (predicted == labels).float().mean().item()}


def pixelcnn(out: Path, seed: int) -> dict:
    """tests/families/autoregressive/test_ar_model.py."""
    gv.train(
        "pixelcnn",
        data="digits",
        out=out,
        steps=300,
        seed=seed,
        model_config={"head": "logistic", "lr": 5e-3},
        **QUIET,
    )
    train, test = _splits()
    model = gv.load(out)
    x, _ = test.batch(torch.arange(len(test)))
    bpd = float(-model.log_likelihood(x).mean() / (64 * math.log(2)))
    return {"bpd": bpd, "baseline_bpd": independent_pixel_bpd(train, test)}


def vae(out: Path, seed: int) -> dict:
    """tests/families/vae/test_vae_model.py (bits/dim and reconstruction accuracy)."""
    gv.train("vae", data="digits", out=out, steps=400, seed=seed, **QUIET)
    train, test = _splits()
    model = gv.load(out)
    x, y = test.batch(torch.arange(len(test)))
    bpd = float(-model.log_likelihood(x, k=100).mean() / (64 * math.log(2)))
    judge = judges.get_judge(train, test)
    accuracy = (judge.logits(model.reconstruct(x)).argmax(1) == y).float().mean().item()
    return {"bpd": bpd, "baseline_bpd": independent_pixel_bpd(train, test), "recon_accuracy": accuracy}


def hvae(out: Path, seed: int) -> dict:
    """tests/families/vae/test_hvae.py (IWAE bits/dim and each layer's KL on the test digits)."""
    from families.vae.test_hvae import BATCH, STEPS, TRAIN_CONFIG

    config = {"steps": STEPS, "batch_size": BATCH, "model_config": TRAIN_CONFIG}
    gv.train("hvae", data="digits", out=out, seed=seed, **config, **QUIET)
    train, test = _splits()
    model = gv.load(out)
    x, _ = test.batch(torch.arange(len(test)))
    bpd = float(-model.log_likelihood(x, k=100).mean() / (64 * math.log(2)))
    elbo_bpd = float(-model.elbo(x).mean() / (64 * math.log(2)))
    with torch.no_grad():
        kl = model.eval().bound_terms(x, seeding.image_generators(len(x), 0))["kl"].mean(0)
    return {
        "bpd": bpd,
        "elbo_bpd": elbo_bpd,
        "baseline_bpd": independent_pixel_bpd(train, test),
        "layer_kl": [round(v, 3) for v in kl.tolist()],
    }


def glow(out: Path, seed: int) -> dict:
    """tests/families/flows/test_flows_quality.py."""
    gv.train("glow", data="digits", out=out, steps=250, seed=seed, save_every=0, **QUIET)
    train, test = _splits()
    model = gv.load(out)
    x, _ = test.batch(torch.arange(len(test)))
    bpd = (-model.log_likelihood(x, seed=0).mean() / (64 * math.log(2))).item()
    base_fid, _ = domain_fid(independent_pixel_samples(train, 500, seed=0), train, test)
    samples = sample_in_batches(model, 500, seed=0, options={"temperature": 0.7})
    fid, _ = domain_fid(samples, train, test)
    return {
        "bpd": bpd,
        "baseline_bpd": independent_pixel_bpd(train, test),
        "fid": fid,
        "baseline_fid": base_fid,
    }


def prior(out: Path, seed: int) -> dict:
    """tests/families/autoregressive/test_ar_prior.py (the VQ-VAE and the prior, both seeded)."""
    from families.autoregressive.tiny_configs import TINY, TINY_VQVAE

    vq_dir = out.parent / "vqvae"
    gv.train("vqvae", data="digits", out=vq_dir, steps=60, seed=seed, model_config=TINY_VQVAE, **QUIET)
    config = {**TINY["vqvae-transformer"], "width": 32, "vqvae": str(vq_dir)}
    gv.train("vqvae-transformer", data="digits", out=out, steps=150, seed=seed, model_config=config, **QUIET)
    model = gv.load(out)
    vq = model.vqvae
    train, test = _splits()
    codes_train = vq.encode(train.batch(torch.arange(len(train)))[0]).flatten(1)
    codes_test = vq.encode(test.batch(torch.arange(len(test)))[0])
    k = model.codebook_size
    counts = torch.stack([torch.bincount(c, minlength=k) for c in codes_train.T]).double() + 1
    log_p = (counts / counts.sum(1, keepdim=True)).log()
    independent = -log_p.gather(1, codes_test.flatten(1).T).sum(0).mean().item()
    learned = -model.code_log_likelihood(codes_test).mean().item()
    return {"nll": learned, "independent_nll": independent, "gain": independent - learned}


def _diffusion(name):
    """tests/families/diffusion/test_objectives_quality.py (its recipes: quality_recipes.py)."""
    from families.diffusion import quality_recipes

    def run(out: Path, seed: int) -> dict:
        return {**getattr(quality_recipes, name)(out, seed), "baseline_fid": quality_recipes.baseline_fid()}

    run.__name__ = name
    return run


def ddpm_text(out: Path, seed: int) -> dict:
    """tests/families/diffusion/test_text_models.py (a short ddpm-text run prompted by template captions)."""
    from families.diffusion import test_text_models as t

    t.run_text_digits(out, seed)
    return {"accuracy": t.prompted_accuracy(gv.load(out)), "alignment_top1": t.alignment_top1(out)}


def restoration(out: Path, seed: int) -> dict:
    """tests/families/diffusion/test_restoration_models.py (restoration_recipes.py): inpaint, sr, colorize."""
    from families.diffusion import restoration_recipes as recipes

    figures = {}
    for task in recipes.RUNS:
        if task == "colorize" and not data.shared_path("datasets", "emoji", "twemoji").is_dir():
            continue
        start = time.perf_counter()
        measured = recipes.run(task, out / task, seed)
        figures[f"{task}/seconds"] = round(time.perf_counter() - start, 1)
        figures.update({f"{task}/{k}": round(v, 4) for k, v in measured.items()})
    return figures


FAMILIES = {
    f.__name__: f
    for f in (
        ddpm,
        sngan,
        wgan,
        stylegan,
        sngan_cond,
        biggan,
        pixelcnn,
        vae,
        hvae,
        glow,
        prior,
        ddpm_text,
        restoration,
    )
    + tuple(
        _diffusion(n) for n in ("flow_matching", "edm", "ldm", "consistency", "reflow", "ldm_consistency")
    )
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    judges.get_judge(*_splits())  # trained once, outside the timings
    for name in args.families:
        for seed in map(int, args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                figures = FAMILIES[name](Path(tmp) / "run", seed)
                seconds = round(time.perf_counter() - start, 1)
            print(json.dumps({"family": name, "seed": seed, "seconds": seconds, **figures}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
