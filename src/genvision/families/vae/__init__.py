"""VAE family: VAE and beta-VAE (``model.py``), VQ-VAE (``vqvae.py``)."""
