"""Tiny GAN configs for the registry walk (tests/test_registry.py)."""

_TINY = {"latent_dim": 8, "hidden": 16, "base_channels": 8}
TINY = {
    name: dict(_TINY)
    for name in ("biggan", "gan", "gan-minimax", "dcgan", "wgan", "wgan-gp", "sngan", "sngan-cond")
}
TINY["stylegan"] = {"latent_dim": 8, "mapping_layers": 2, "base_channels": 8}
TINY["cyclegan"] = {"base_channels": 4, "res_blocks": 1, "channels": 1}
