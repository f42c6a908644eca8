"""GAN objectives and regularisers: pure functions of discriminator outputs (logits).

Notation: r = D's logits on real images, f = D's logits on generated ones, each (B,); for the
sigmoid losses D(x) = sigmoid(logit), and log sigmoid(a) = -softplus(-a),
log(1 - sigmoid(a)) = -softplus(a) keep every term finite.

==========  =======================================  ================================
kind        discriminator / critic minimises         generator minimises
==========  =======================================  ================================
minimax     -E log D(x) - E log(1 - D(G(z)))         E log(1 - D(G(z)))  (saturates)
ns          same as minimax                          -E log D(G(z))      (non-saturating)
wgan        E f - E r  (critic weights clipped)      -E f
wgan-gp     E f - E r  (+ gradient penalty)          -E f
hinge       E relu(1 - r) + E relu(1 + f)            -E f
==========  =======================================  ================================

References: Goodfellow et al. 2014 (minimax, non-saturating), Arjovsky et al. 2017 (WGAN,
weight clipping: :func:`clip_weights`), Gulrajani et al. 2017 (WGAN-GP),
Lim & Ye 2017 / Miyato et al. 2018 (hinge), Mescheder et al. 2018 (R1), Salimans et al. 2016
(one-sided label smoothing).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES = ("minimax", "ns", "wgan", "wgan-gp", "hinge")
WASSERSTEIN_LOSSES = ("wgan", "wgan-gp")
SIGMOID_LOSSES = ("minimax", "ns")


def discriminator_loss(
    kind: str, r: torch.Tensor, f: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Scalar loss of the discriminator (critic) for logits r (real) and f (fake), each (B,).

    ``label_smoothing`` s (sigmoid losses only) makes the real target 1 - s instead of 1
    (one-sided: the fake target stays 0).
    """
    if kind in SIGMOID_LOSSES:
        real = (1 - label_smoothing) * F.softplus(-r) + label_smoothing * F.softplus(r)  # BCE(r, 1 - s)
        return real.mean() + F.softplus(f).mean()
    if kind in WASSERSTEIN_LOSSES:
        return f.mean() - r.mean()
    if kind == "hinge":
        return F.relu(1 - r).mean() + F.relu(1 + f).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; known: {', '.join(LOSSES)}")


def generator_loss(kind: str, f: torch.Tensor) -> torch.Tensor:
    """Scalar loss of the generator for the discriminator's logits f (B,) on its images."""
    if kind == "minimax":
        return -F.softplus(f).mean()  # E log(1 - D(G(z))): gradient vanishes while D wins
    if kind == "ns":
        return F.softplus(-f).mean()  # -E log D(G(z))
    if kind in (*WASSERSTEIN_LOSSES, "hinge"):
        return -f.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; known: {', '.join(LOSSES)}")


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP penalty E (||grad_x critic(x_hat)||_2 - 1)^2 at x_hat = eps real + (1 - eps) fake.

    Args:
        critic: images (B, C, H, W) -> (B,) scores.
        real, fake: (B, C, H, W) images; ``fake`` is treated as a constant.
        eps: (B, 1, 1, 1) uniform [0, 1) mixing weights, one per image.

    Returns:
        Scalar penalty, differentiable in the critic's parameters (double backpropagation).
    """
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(dim=1)  # (B,)
    return ((norm - 1) ** 2).mean()


def r1_penalty(r: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 penalty E ||grad_x D(x)||^2 on real images (the caller weighs it by gamma / 2).

    Args:
        r: (B,) logits computed from ``real``, which must require grad.
        real: (B, C, H, W) the real batch the logits came from.
    """
    (grad,) = torch.autograd.grad(r.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


@torch.no_grad()
def clip_weights(params, c: float) -> None:
    """WGAN's Lipschitz constraint, crudely: clamp every critic parameter into [-c, c] in place."""
    for p in params:
        p.clamp_(-c, c)


def cycle_loss(x: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    """Cycle-consistency (CycleGAN): mean |x - F(G(x))|; zero when the round trip is exact."""
    return (x - back).abs().mean()
