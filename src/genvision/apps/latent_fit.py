"""The latent route of restoration: models with a decoder from a standard-normal latent (VAEs,
normalizing flows, GANs) restore by searching their latent for an image that matches the input.

For a linear degradation ``A`` (masking, s x s box downsampling, luma; :mod:`genvision.data.degrade`)
and measurement ``y``, the latent is the maximum a posteriori estimate under the model's prior
N(0, I) with Gaussian measurement noise of standard deviation ``noise``::

    z* = argmin_z  |A decode(z) - y|^2 / (2 noise^2) + |z|^2 / 2

found by Adam from a few starts per image (the first from the model's encoder when it has one,
applied to ``A+ y``; the others drawn from the image's own generator), keeping the start with the
lowest objective. ``decode(z*)`` then goes through the exact projection of every route
(:func:`genvision.data.degrade.fit`), so known pixels, low-res blocks or luma are kept exactly.

The prior term is what keeps the search on images the model makes: with ``noise`` small the
estimate matches the measurement more closely and can leave the model's typical set (a flow,
whose latent has as many dimensions as pixels, can then reproduce the measurement's artefacts);
``noise`` large returns an image near the model's mode whatever the input. A closed-form check on
a linear-Gaussian decoder is in the tests.
"""

from __future__ import annotations

import torch

from .. import seeding
from ..data import degrade
from ..families.base import has

#: defaults of the search (per image): Adam steps, learning rate, starts, measurement noise
STEPS = 200
LR = 0.05
STARTS = 4
NOISE = 0.05
OPTIONS = ("steps", "starts", "lr", "noise")


def can_fit(model) -> bool:
    """Whether ``model`` has what the latent route needs: an unconditional decoder from N(0, I)."""
    return (
        has(model, "decode")
        and getattr(model, "latent_shape", None) is not None
        and getattr(model, "samples_the_data", True)
        and not getattr(getattr(model, "config", None), "conditional", False)
        and callable(getattr(type(model).decode, "__wrapped__", None) or getattr(model, "decode_grad", None))
    )


def _decoder(model):
    """``decode`` with gradients: the model's ``decode_grad`` or the function under its no_grad."""
    if callable(getattr(model, "decode_grad", None)):
        return model.decode_grad
    raw = type(model).decode.__wrapped__
    return lambda z: raw(model, z)


def fit_latent(
    model,
    task: str,
    meas: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    scale: int = 4,
    generator=None,
    steps: int = STEPS,
    lr: float = LR,
    starts: int = STARTS,
    noise: float = NOISE,
) -> torch.Tensor:
    """Decoded MAP latents for measurements ``meas`` (B, ...) of ``task``: (B, C, H, W) in [-1, 1].

    ``meas`` is ``degrade.degrade(task, x)``: for inpainting the known pixels with zeros in the hole.

    Not yet projected onto the measurement (the caller's final :func:`degrade.fit` does that).
    ``generator``: one generator per image (``seeding.image_generators``) for the random starts.
    """
    for name, v, lo in (("steps", steps, 1), ("starts", starts, 1)):
        if int(v) < lo:
            raise ValueError(f"{name} must be >= {lo} (got {v})")
    if not noise > 0:
        raise ValueError(f"noise must be > 0 (got {noise}); try {NOISE}")
    device = model.device
    meas = meas.to(device)
    b = meas.shape[0]
    shape = tuple(model.latent_shape)
    if generator is None:
        generator = seeding.image_generators(b, 0, device)
    z0 = seeding._draw(torch.randn, (b, starts, *shape), generator, device, torch.float32)
    if has(model, "encode") and not getattr(model, "encode_is_not_inverse", False):
        c = model.config
        guess = degrade.project(
            task,
            torch.zeros(b, c.channels, c.image_size, c.image_size, device=device),
            meas,
            mask=mask,
            scale=scale,
        )
        z0[:, 0] = model.encode(guess.clamp(-1, 1)).reshape(b, *shape).float()
    z = z0.reshape(b * starts, *shape).clone().requires_grad_(True)
    rep = lambda t: t.repeat_interleave(starts, dim=0) if t is not None else None  # noqa: E731
    y, m = rep(meas), rep(mask.to(device) if mask is not None else None)
    decode = _decoder(model)
    opt = torch.optim.Adam([z], lr=lr)
    dims = tuple(range(1, z.dim()))

    def objective():
        x = decode(z)
        data = (degrade.degrade(task, x, mask=m, scale=scale) - y).pow(2).flatten(1).sum(1) / (2 * noise**2)
        return data + 0.5 * z.pow(2).sum(dims), x

    with model.eval_mode(), torch.enable_grad():
        for _ in range(int(steps)):
            loss, _ = objective()
            opt.zero_grad(set_to_none=True)
            (g,) = torch.autograd.grad(loss.sum(), z)
            z.grad = g
            opt.step()
        with torch.no_grad():
            loss, x = objective()
    best = loss.view(b, starts).argmin(1)
    x = x.detach().view(b, starts, *x.shape[1:])
    return x[torch.arange(b, device=x.device), best]
