"""Exponential moving average of parameters, with the decay set as a half-life in images.

A half-life of H images means a weight's contribution halves every H images seen, whatever the
batch size: per step, beta = 0.5 ** (images_per_step / H). Early in training the average also
warms up (beta <= (1 + n) / (10 + n) for update n) so short runs are not dominated by the
random initialisation. While that bound is the tighter one, the average's centre of mass stays a
tenth of the run behind its end (for n updates of a steadily moving weight, the average is where the weight was at 0.9 n);
with a half-life longer than the run (:data:`WARMUP_ONLY`) it alone sets the decay, so the
average spans the same fraction of any run, short or long.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

#: a half-life (images) beyond any run: the warm-up bound alone sets the decay
WARMUP_ONLY = 1e12


class EMA:
    """EMA of a list of named parameters.

    Args:
        named_params: list of (name, parameter) pairs to average.
        half_life: half-life in images (> 0).
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], half_life: float):
        if half_life <= 0:
            raise ValueError(f"ema half-life must be > 0 images (got {half_life}); use 0 to disable EMA")
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.half_life = half_life
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    def beta(self, images_per_step: int) -> float:
        beta = 0.5 ** (images_per_step / self.half_life)
        return min(beta, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, images_per_step: int) -> None:
        beta = self.beta(images_per_step)
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p.detach().to(s.dtype), 1.0 - beta)
        self.updates += 1

    def state(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.shadow))

    def load_state(self, state: dict[str, torch.Tensor], updates: int) -> None:
        for i, name in enumerate(self.names):
            self.shadow[i].copy_(state[name])
        self.updates = updates

    @contextmanager
    def swapped_in(self):
        """Temporarily put the averaged weights into the model (for sampling)."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self.params, backup):
                    p.copy_(b)
