"""Autoregressive family: PixelCNN, Gated PixelCNN, PixelRNN (Row LSTM), transformer prior over VQ-VAE codes."""
