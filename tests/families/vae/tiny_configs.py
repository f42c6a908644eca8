"""Smallest VAE-family configs for the registry walk (tests/test_registry.py)."""

TINY = {
    "vae": {"base_channels": 8, "hidden": 32, "latent_dim": 4},
    "beta-vae": {"base_channels": 8, "hidden": 32, "latent_dim": 4},
    "hvae": {"base_channels": 8, "latent_channels": 2, "num_layers": 2},
    "vqvae": {"base_channels": 8, "codebook_size": 16, "embedding_dim": 4},
}
TINY["adain"] = {"base_channels": 4, "channels": 1}
