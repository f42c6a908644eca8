"""Smallest autoregressive configs for the registry walk (tests/test_registry.py).

``vqvae-transformer`` needs a VQ-VAE directory: ``prepare`` saves a tiny untrained one.
"""

from __future__ import annotations

import genvision as gv
from genvision.model_dir import save_model_dir

TINY = {
    "pixelcnn": {"width": 8, "num_layers": 1, "head_width": 8},
    "gated-pixelcnn": {"width": 8, "num_layers": 1, "head_width": 8},
    "gated-pixelcnn-cond": {"width": 8, "num_layers": 1, "head_width": 8},
    "pixelrnn": {"width": 8, "num_layers": 1, "head_width": 8},
    "vqvae-transformer": {"width": 16, "heads": 2, "num_layers": 1},
}

#: the tiny VQ-VAE a prior is built on (the VAE family's smallest settings)
TINY_VQVAE = {"base_channels": 8, "codebook_size": 16, "embedding_dim": 4}


def prepare(name: str, tmp_path) -> dict:
    """Extra overrides that need files: a saved tiny VQ-VAE for the transformer prior."""
    if name != "vqvae-transformer":
        return {}
    directory = tmp_path / "parent-vqvae"
    save_model_dir(gv.create("vqvae", levels=17, **TINY_VQVAE), directory)
    return {"vqvae": str(directory)}
