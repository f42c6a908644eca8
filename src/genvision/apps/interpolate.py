"""Latent tools: interpolation, traversals and attribute vectors, for every family with a latent.

Written against capabilities only (no family names):

- ``encode(x) -> Tensor`` and ``decode(z)``: VAEs (z of ``latent_shape``) and flows (z of the
  image's full dimension). Interpolation runs between the latents of two images.
- ``decode(z)`` and ``latent_shape`` without ``encode``: GAN generators. Interpolation runs
  between latents drawn from the prior N(0, I) with two seeds: seed S gives the latent of image
  0 of ``sample(1, seed=S)``'s generator, ``seeding.image_seed(S, 0)``.
- ``encode`` returning integer codes (VQ-VAE): refused with a clear error. Codes are discrete;
  a path between two code maps has no in-between points, and one through the quantiser's
  embedding space would decode vectors the decoder never saw in training.

Interpolation is linear, or spherical (slerp, Shoemake 1985; White 2016 "Sampling generative
networks"), which keeps a Gaussian latent's norm near the typical shell sqrt(D) where linear
paths pass through the low-norm middle the prior rarely draws.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import seeding
from ..families.base import has

MODES = ("linear", "spherical")
LATENT_FAMILIES = "vae, beta-vae (encode/decode), realnvp, glow (encode/decode), GAN generators (decode)"


# ----------------------------------------------------------------------------- paths
def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear path: (1 - t) z0 + t z1 for each t; (T, *z0.shape) from latents of one shape."""
    t = t.view(-1, *([1] * z0.dim())).to(z0)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical path on the angle between z0 and z1 (flattened); linear when they are parallel.

    sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1, w = angle(z0, z1): constant angular speed,
    and norms that interpolate smoothly between |z0| and |z1| instead of dipping in the middle.
    """
    a, b = z0.flatten().double(), z1.flatten().double()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-4:  # (anti)parallel to round-off: the two paths agree
        return lerp(z0, z1, t)
    t = t.double().view(-1, 1)
    path = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    return path.to(z0.dtype).view(-1, *z0.shape)


def latent_path(z0: torch.Tensor, z1: torch.Tensor, frames: int, mode: str = "linear") -> torch.Tensor:
    """``frames`` latents from z0 to z1 (both included), (frames, *z0.shape)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
    if frames < 2:
        raise ValueError(f"frames must be >= 2 (got {frames}); the path includes both ends")
    if z0.shape != z1.shape:
        raise ValueError(f"the two latents differ in shape: {tuple(z0.shape)} vs {tuple(z1.shape)}")
    t = torch.linspace(0, 1, frames)
    return (lerp if mode == "linear" else slerp)(z0, z1, t)


# ----------------------------------------------------------------------------- capabilities
def _require_decode(model) -> None:
    if not has(model, "decode"):
        raise ValueError(
            f"{model.registry_name} ({model.family}) has no decode(); latent tools need a model with a "
            f"latent: {LATENT_FAMILIES}"
        )


def encode_continuous(model, x: torch.Tensor) -> torch.Tensor:
    """``model.encode(x)`` for images (B, C, H, W) in [-1, 1]; refuses discrete codes and GANs."""
    _require_decode(model)
    if not has(model, "encode"):
        raise ValueError(
            f"{model.registry_name} ({model.family}) has no encode(): it cannot map images to latents; "
            "interpolate between prior latents by seed instead (genvision interpolate --from/--to name seeds)"
        )
    with torch.no_grad():
        z = model.encode(x.to(model.device))
    if not torch.is_floating_point(z):
        raise ValueError(
            f"{model.registry_name} encodes to discrete codes ({z.dtype}); a path between code maps has "
            "no in-between points, so it cannot be interpolated; use a continuous-latent model such as vae"
        )
    return z


def prior_latent(model, seed: int) -> torch.Tensor:
    """z ~ N(0, I) of ``model.latent_shape`` from the generator of image 0 of seed ``seed``."""
    _require_decode(model)
    shape = model.latent_shape
    if shape is None:
        raise ValueError(
            f"{model.registry_name} ({model.family}) has no latent_shape; it has no Gaussian prior"
        )
    gens = seeding.image_generators(1, seed, model.device)
    return seeding.randn((1, *shape), gens, model.device)[0]


def decode(model, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``model.decode`` in batches; (N, C, H, W) float on the CPU in [-1, 1]."""
    with torch.no_grad():
        out = [
            model.decode(z[i : i + batch_size].to(model.device)).float().cpu()
            for i in range(0, len(z), batch_size)
        ]
    return torch.cat(out).clamp(-1, 1)


# ----------------------------------------------------------------------------- tools
def interpolate(
    model, x0: torch.Tensor, x1: torch.Tensor, frames: int = 8, mode: str = "linear"
) -> torch.Tensor:
    """Decoded path between the latents of two images.

    Args:
        model: a model with ``encode`` (continuous) and ``decode``.
        x0, x1: images (C, H, W) or (1, C, H, W) in [-1, 1].
        frames: points on the path, both ends included.
        mode: "linear" or "spherical".

    Returns:
        (frames, C, H, W) in [-1, 1]: decode(encode(x0)) first, decode(encode(x1)) last.
    """
    z = encode_continuous(model, torch.stack([x0.reshape(x0.shape[-3:]), x1.reshape(x1.shape[-3:])]))
    return decode(model, latent_path(z[0], z[1], frames, mode))


def interpolate_seeds(
    model, seed0: int, seed1: int, frames: int = 8, mode: str = "spherical"
) -> torch.Tensor:
    """Decoded path between prior latents drawn with two seeds; (frames, C, H, W) in [-1, 1]."""
    return decode(model, latent_path(prior_latent(model, seed0), prior_latent(model, seed1), frames, mode))


def traverse(model, z: torch.Tensor, dims=None, steps: int = 7, span: float = 3.0) -> torch.Tensor:
    """Latent traversal: vary one dimension at a time over [-span, span], the others fixed at z.

    Args:
        z: one latent of ``latent_shape`` (e.g. ``encode(x)[0]`` or zeros, the prior's mean).
        dims: flat indices of the dimensions to vary (default: the first min(10, D)).
        steps: values per dimension.

    Returns:
        (len(dims) * steps, C, H, W) in [-1, 1]: row r of a ``steps``-wide grid varies dims[r].
    """
    _require_decode(model)
    flat = z.detach().flatten().cpu()
    dims = list(range(min(10, flat.numel()))) if dims is None else list(dims)
    if not dims or any(not 0 <= d < flat.numel() for d in dims):
        raise ValueError(f"dims must be indices in 0..{flat.numel() - 1} (got {dims})")
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (got {steps})")
    values = torch.linspace(-span, span, steps)
    zs = flat.repeat(len(dims) * steps, 1)  # (R * steps, D)
    for r, d in enumerate(dims):
        zs[r * steps : (r + 1) * steps, d] = values
    return decode(model, zs.view(-1, *z.shape))


def attribute_vector(model, images: torch.Tensor, has_attribute: torch.Tensor) -> torch.Tensor:
    """Mean latent of the images with an attribute minus the mean of those without.

    Args:
        images: (N, C, H, W) in [-1, 1].
        has_attribute: bool (N,), e.g. ``labels == 7``; both groups must be non-empty.

    Returns:
        A latent direction of the model's latent shape; add it (scaled) with :func:`apply_attribute`.
    """
    mask = torch.as_tensor(has_attribute, dtype=torch.bool).cpu()
    if mask.shape != (len(images),) or mask.all() or not mask.any():
        raise ValueError(
            "has_attribute must be a bool mask (N,) with images both with and without the attribute"
        )
    z = torch.cat([encode_continuous(model, images[i : i + 256]).cpu() for i in range(0, len(images), 256)])
    return z[mask].mean(0) - z[~mask].mean(0)


def apply_attribute(
    model, x: torch.Tensor, vector: torch.Tensor, strengths=(0.0, 0.5, 1.0, 1.5, 2.0)
) -> torch.Tensor:
    """decode(encode(x) + s * vector) for each strength s: (len(strengths), C, H, W) in [-1, 1]."""
    z = encode_continuous(model, x.reshape(1, *x.shape[-3:]))[0].cpu()
    s = torch.as_tensor(strengths, dtype=z.dtype).view(-1, *([1] * z.dim()))
    return decode(model, z + s * vector.to(z))


# ----------------------------------------------------------------------------- the command
def interpolation_grid(
    source,
    *,
    data: str | None = None,
    start: int = 0,
    end: int = 1,
    frames: int = 8,
    mode: str = "linear",
    out: str | Path | None = None,
) -> dict:
    """What ``genvision interpolate`` does: one row of images, written to ``out`` as a PNG.

    With ``encode``: the test-split images ``start`` and ``end`` of ``data`` (default: the
    run's own data), then the decoded path between their latents, then the two originals again
    for comparison: [x_start, path..., x_end]. Without ``encode`` (GANs): ``start`` and ``end``
    are seeds of prior latents and the row is the decoded path.

    Returns:
        {"path": PNG written, "images": (N, C, H, W), "route": "images" or "seeds"}.
    """
    from .. import data as gdata
    from ..model_dir import load_model_dir, read_config
    from ..viz import save_grid

    model = load_model_dir(source) if isinstance(source, (str, Path)) else source
    _require_decode(model)
    if has(model, "encode"):
        if data is None and isinstance(source, (str, Path)):
            data = read_config(source).get("data", {}).get("spec")
        test = gdata.load(data or "digits", "test")
        if (test.channels, test.image_size) != (model.config.channels, model.config.image_size):
            raise ValueError(
                f"{test.spec} has {test.channels}x{test.image_size}x{test.image_size} images but the model "
                f"takes {model.config.channels}x{model.config.image_size}x{model.config.image_size}; pass its --data"
            )
        for i in (start, end):
            if not 0 <= i < len(test):
                raise ValueError(
                    f"--from/--to index the test split of {test.spec}: 0..{len(test) - 1} (got {i})"
                )
        x, _ = test.batch(torch.tensor([start, end]))
        path = interpolate(model, x[0], x[1], frames=frames, mode=mode)
        images, route = torch.cat([x[:1], path, x[1:]]), "images"
    else:
        for s in (start, end):
            if s < 0:
                raise ValueError(
                    f"--from/--to are seeds of prior latents for this model and must be >= 0 (got {s})"
                )
        images, route = interpolate_seeds(model, start, end, frames=frames, mode=mode), "seeds"
    out = Path(out) if out is not None else Path(f"interpolate_{start}_{end}.png")
    if out.suffix != ".png":
        raise ValueError(f"--out must end in .png (got {out.name})")
    save_grid(images, out, nrow=len(images))
    return {"path": out, "images": images, "route": route}
