"""report.md: built from whatever a run directory holds, images linked relatively."""

from __future__ import annotations

import json
import re

import torch

from genvision import io
from genvision.metrics import report
from genvision.viz import save_grid


def test_report_shows_training_samples_and_evaluation(tmp_path):
    run = tmp_path / "run"
    io.write_json(
        run / "config.json",
        {
            "registry_name": "ddpm",
            "family": "diffusion",
            "model_config": {"image_size": 8, "base_channels": 16},
            "train_config": {"steps": 30, "batch_size": 64, "lr": None},
            "data": {"spec": "digits"},
        },
    )
    lines = [
        json.dumps({"step": s, "loss": 1.0 / s, "img_per_s": 900.0, "flops_per_image": 2.5e6})
        for s in range(1, 31)
    ]
    io.write_text(run / "metrics.jsonl", "\n".join(lines) + "\n{torn")
    save_grid(torch.zeros(4, 1, 8, 8), run / "grid.png")
    save_grid(torch.zeros(4, 1, 8, 8), run / "samples" / "step_000030.png")
    fid = {
        "value": 12.3456,
        "floor": 3.5,
        "ratio_to_floor": 3.527,
        "n_generated": 1000,
        "n_reference": 1347,
        "n_floor": 450,
        "judge": {"test_accuracy": 0.978, "recipe_version": 1},
    }
    metrics = {
        "fid": fid,
        "class_histogram": {"counts": [100] * 10, "entropy_nats": 2.3026, "max_entropy_nats": 2.3026},
        "confidence": {"samples": 0.9, "test_split": 0.99, "judge_test_accuracy": 0.978},
    }
    io.write_json(
        run / "metrics.json", {"metrics": metrics, "source": {"kind": "model directory", "n": 1000}}
    )

    text = report.write_report(run).read_text()
    assert text.startswith("# ddpm on digits")
    assert "12.35" in text and "3.5" in text and "0.978" in text
    assert "2.5 MFLOP" in text and "| final loss (last logged) | 0.03333 |" in text
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert {"loss.png", "grid.png", "samples/step_000030.png"} <= set(links)
    assert all((run / link).is_file() for link in links)


def test_report_of_an_empty_directory_is_just_a_title(tmp_path):
    text = report.write_report(tmp_path).read_text()
    assert text.strip() == f"# {tmp_path.name}"
