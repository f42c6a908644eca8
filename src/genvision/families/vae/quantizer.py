"""Vector quantiser of the VQ-VAE (van den Oord et al., 2017) with an EMA codebook.

    z_e (B, D, h, w) -> nearest code e_k per position -> z_q = z_e + sg(e_k - z_e)  (straight-through)
    loss term: commitment ||z_e - sg(e_k)||^2 (the codebook itself is not learned by gradient)

Codebook updates are exponential moving averages of the encoder outputs assigned to each code
(van den Oord et al., 2017, appendix A.1): N_k <- g N_k + (1 - g) n_k, m_k <- g m_k + (1 - g)
sum z_e, e_k = m_k / N_k (N_k Laplace-smoothed). ``loss`` only records the batch's assignment
statistics; :meth:`VectorQuantizer.update` applies them after the optimiser step (the trainer's
``after_step`` hook), so a forward pass that is not followed by a step (the trainer's FLOP
count, evaluation) changes nothing. Dead-code restarts (Dhariwal et al., 2020, Jukebox): a code
whose usage N_k falls under ``restart_threshold`` takes the value of a random encoder output of
the last batch, drawn from a generator seeded by the step count, so resume stays exact.

Known limit: under data parallelism each process updates its codebook from its own shard (the
statistics are not all-reduced), so the codebooks of the processes drift apart slowly.
"""

from __future__ import annotations

import torch
from torch import nn


class VectorQuantizer(nn.Module):
    """Codebook of ``codebook_size`` vectors of ``embedding_dim``; every tensor here is a buffer."""

    def __init__(self, codebook_size: int, embedding_dim: int, decay: float, restart_threshold: float):
        super().__init__()
        self.decay, self.restart_threshold = decay, restart_threshold
        embed = torch.randn(codebook_size, embedding_dim) / embedding_dim**0.5
        self.register_buffer("embed", embed)  # (K, D) e_k
        self.register_buffer("cluster_size", torch.ones(codebook_size))  # (K,) N_k
        self.register_buffer("embed_sum", embed.clone())  # (K, D) m_k
        self._stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def codebook_size(self) -> int:
        return self.embed.shape[0]

    def nearest(self, ze: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each position: (B, D, h, w) -> int64 (B, h, w)."""
        flat = ze.permute(0, 2, 3, 1).reshape(-1, ze.shape[1])  # (B h w, D)
        dist = (flat**2).sum(1, keepdim=True) - 2 * flat @ self.embed.T + (self.embed**2).sum(1)
        return dist.argmin(dim=1).view(ze.shape[0], ze.shape[2], ze.shape[3])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors of indices: int64 (B, h, w) -> (B, D, h, w)."""
        return self.embed[codes].permute(0, 3, 1, 2)

    def forward(self, ze: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantise z_e; record the assignment statistics when training.

        Returns:
            zq: (B, D, h, w) straight-through quantised vectors (value e_k, gradient to z_e).
            codes: int64 (B, h, w).
            commitment: (B,) squared distance ||z_e - sg(e_k)||^2 summed over positions.
        """
        codes = self.nearest(ze.detach())
        e = self.lookup(codes)
        commitment = ((ze - e.detach()) ** 2).flatten(1).sum(1)
        if self.training:
            flat = ze.detach().permute(0, 2, 3, 1).reshape(-1, ze.shape[1]).float()
            onehot = torch.nn.functional.one_hot(codes.flatten(), self.codebook_size).float()  # (N, K)
            self._stats = (onehot.sum(0), onehot.T @ flat, flat)
        return ze + (e - ze).detach(), codes, commitment

    @torch.no_grad()
    def update(self, step: int) -> int:
        """Apply the last recorded batch to the EMA codebook; restart dead codes. Returns restarts."""
        if self._stats is None:
            return 0
        counts, sums, flat = self._stats
        self._stats = None
        g = self.decay
        self.cluster_size.mul_(g).add_(counts, alpha=1 - g)
        self.embed_sum.mul_(g).add_(sums, alpha=1 - g)
        n = self.cluster_size.sum()
        k = self.codebook_size
        smoothed = (self.cluster_size + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing of N_k
        self.embed.copy_(self.embed_sum / smoothed.unsqueeze(1))
        if self.restart_threshold <= 0:
            return 0
        dead = (self.cluster_size < self.restart_threshold).nonzero().flatten()
        if len(dead) == 0:
            return 0
        gen = torch.Generator(device="cpu").manual_seed(step)
        pick = torch.randint(len(flat), (len(dead),), generator=gen).to(flat.device)
        self.embed[dead] = flat[pick]
        self.embed_sum[dead] = flat[pick]
        self.cluster_size[dead] = 1.0
        return len(dead)
