"""Attribute editing: move an image along an attribute's direction in a model's latent space.

    genvision edit RUN --input IMG|npz:FILE|folder:DIR --attribute NAME [--amount A] --out OUT
    genvision edit RUN --input ... --from-dir DIR --to-dir DIR [--amount A] --out OUT

**Where the edit happens** (:func:`latent_space`, from what the model can do):

- VAEs and normalizing flows (``encode`` / ``decode``): their latent.
- latent diffusion models (``ldm``, ...): the autoencoder latent the model samples in.
- pixel-space diffusion models (``ddpm``, ``flow-matching``, ``edm``): the start noise the Euler
  sampler turns into the image (``Denoiser.invert``, decoded without clipping), the noise an
  exact-enough inversion gives back.

**The direction** is a difference of mean latents between images with and without the attribute,
estimated on up to ``n`` training images of the model's own data (the run's ``config.json``):

- ``thickness`` (grey digits): the measured mean stroke width (:func:`thickness`); the direction
  is the least-squares slope of the latent on thickness, scaled so that amount 1 is one standard
  deviation of the training set's thickness.
- a class name (``seven``, ``food-drink``) or number: that class's mean latent minus the rest's.
- a caption word (``woman``, ``older``: a ``captions.tsv`` beside the images): pairs of captions
  that differ by the word ("woman cook" / "man cook", "older man" / "man") give paired
  differences, averaged; without pairs, images with the word against the rest.
- ``--from-dir A --to-dir B``: mean latent of B's images minus A's.

For all but thickness, amount 1 moves by the whole mean difference. ``method="probe"``
(``--direction probe``) instead takes the normal of a linear probe (L2-regularised logistic
regression on the standardised latents) that tells the two groups apart, scaled so that amount 1
moves the groups' mean gap along it: the direction that separates them rather than the one their
means differ by, which leaves out differences the groups share with the rest of the variation.
The strip picture shows each input at amounts from -A to +A.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import torch

from ..families.base import has

#: training images a direction is estimated from (pixel diffusion: each one costs an inversion)
DIRECTION_N = {"latent": 2000, "autoencoder latent": 2000, "inverted noise": 200}
#: Euler steps of the inversions of the inverted-noise space
EDIT_STEPS = 20
#: word -> its counterpart in captions ("" = the word left out)
COUNTERPARTS = {
    "woman": "man",
    "man": "woman",
    "women": "men",
    "men": "women",
    "girl": "boy",
    "boy": "girl",
    "female": "male",
    "male": "female",
    "older": "",
    "old": "",
}
STRIP = 5  # columns of the strip picture: amounts -A .. +A
METHODS = ("mean", "probe")
PROBE_L2 = 1e-2  # the probe's weight decay (on standardised latents)
PROBE_ITERATIONS = 200


# ----------------------------------------------------------------------------- the measure
def thickness(images: torch.Tensor) -> torch.Tensor:
    """Mean stroke width in pixels of grey images (B, 1, H, W) in [-1, 1] (bright strokes).

    Binarised at the middle grey, the distance transform gives every stroke pixel its distance
    to the nearest background pixel; on the stroke's ridge (pixels at least as far as all 8
    neighbours) that distance is (w + 1) / 2 across a stroke of odd width w and w / 2 (on two
    ridge pixels) for even w, so ``2 * mean(ridge distance) - 0.5`` is within half a pixel of
    the width either way (the test draws strokes of known width). No stroke: width 0.
    """
    from scipy import ndimage

    x = torch.as_tensor(images)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"thickness measures grey images (B, 1, H, W); got shape {tuple(x.shape)}")
    out = []
    for img in (x[:, 0] > 0).cpu().numpy():
        if not img.any():
            out.append(0.0)
            continue
        dist = ndimage.distance_transform_edt(np.pad(img, 1))[1:-1, 1:-1]
        ridge = img & (dist >= ndimage.maximum_filter(dist, size=3))
        out.append(float(2 * dist[ridge].mean() - 0.5))
    return torch.tensor(out, dtype=torch.float64)


# ----------------------------------------------------------------------------- latent spaces
class LatentSpace:
    """``encode(x) -> z`` and ``decode(z) -> x`` of one model (see the module docstring)."""

    def __init__(self, model, kind: str, steps: int = EDIT_STEPS):
        self.model, self.kind, self.steps = model, kind, steps

    @torch.no_grad()
    def encode(self, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
        m, outs = self.model, []
        for start in range(0, len(x), batch):
            xb = x[start : start + batch].to(m.device)
            if self.kind == "latent":
                outs.append(m.encode(xb).float().cpu())
            elif self.kind == "autoencoder latent":
                outs.append(m.sampler_state(xb).float().cpu())
            else:
                outs.append(m.invert(xb, steps=self.steps).float().cpu())
        return torch.cat(outs)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, batch: int = 128) -> torch.Tensor:
        m, outs = self.model, []
        for start in range(0, len(z), batch):
            zb = z[start : start + batch].to(m.device)
            if self.kind == "latent":
                outs.append(m.decode(zb).cpu())
            elif self.kind == "autoencoder latent":
                outs.append(m.finish(zb).clamp(-1, 1).cpu())
            else:
                x = m.sample(len(zb), seed=0, noise=zb, sampler="euler", steps=self.steps, clip_x0=False)
                outs.append(x.cpu())
        return torch.cat(outs)


def latent_space(model, steps: int = EDIT_STEPS) -> LatentSpace:
    """Where ``model`` edits, or a one-line error naming the models that can."""
    if getattr(getattr(model, "config", None), "conditional", False):
        raise ValueError(
            f"{model.registry_name} is class-conditional; edit with an unconditional model "
            "(its latent then holds the class too)"
        )
    if has(model, "encode") and has(model, "decode") and getattr(model, "latent_shape", None) is not None:
        return LatentSpace(model, "latent")
    if "init" in inspect.signature(model.sample).parameters:
        from ..families.diffusion.denoiser import Denoiser

        if type(model).sampler_state is not Denoiser.sampler_state:  # a latent model
            return LatentSpace(model, "autoencoder latent")
        return LatentSpace(model, "inverted noise", steps)
    raise ValueError(
        f"{model.registry_name} cannot edit attributes: VAEs and flows edit in their latent, diffusion-family "
        "models (ddpm, flow-matching, edm, ldm) in their inverted noise or autoencoder latent"
    )


# ----------------------------------------------------------------------------- directions
def direction(
    space: LatentSpace,
    attribute: str | None,
    dataset=None,
    *,
    from_images: torch.Tensor | None = None,
    to_images: torch.Tensor | None = None,
    n: int | None = None,
    method: str = "mean",
) -> tuple[torch.Tensor, dict]:
    """The attribute's direction in ``space`` (one latent's shape) and how it was found.

    ``method``: "mean" (difference of mean latents) or "probe" (a linear probe's normal; not for
    ``thickness``, which is a regression slope either way).
    """
    if method not in METHODS:
        raise ValueError(f"unknown direction method {method!r}; choose from {', '.join(METHODS)}")
    if from_images is not None or to_images is not None:
        if from_images is None or to_images is None or not len(from_images) or not len(to_images):
            raise ValueError("--from-dir and --to-dir go together, each with at least one image")
        a, b = space.encode(from_images), space.encode(to_images)
        return two_groups(a, b, method, "to", "from", n_from=len(a), n_to=len(b))
    if not attribute:
        raise ValueError("give --attribute NAME, or --from-dir and --to-dir")
    if attribute == "thickness" and method != "mean":
        raise ValueError(
            "thickness is continuous: its direction is a regression slope; drop --direction probe"
        )
    n = n or DIRECTION_N[space.kind]
    k = min(n, len(dataset))
    idx = torch.linspace(0, len(dataset) - 1, k).round().long().unique()
    x, labels = dataset.batch(idx)
    if attribute == "thickness":
        if x.shape[1] != 1:
            raise ValueError("thickness is measured on grey digits; this model's data has colour")
        t = thickness(x)
        z = space.encode(x).double()
        tc, zc = t - t.mean(), z - z.mean(0)
        slope = (zc * tc.view(-1, *([1] * (z.dim() - 1)))).sum(0) / tc.pow(2).sum().clamp_min(1e-12)
        return (slope * t.std()).float(), {
            "how": "least-squares slope of the latent on thickness, times its std (amount 1 = 1 std)",
            "thickness_mean": float(t.mean()),
            "thickness_std": float(t.std()),
            "n_direction": len(idx),
        }
    names = [str(c) for c in (dataset.class_names or [])]
    if attribute in names or (attribute.isdigit() and int(attribute) < dataset.num_classes):
        k = names.index(attribute) if attribute in names else int(attribute)
        inside = labels == k
        if not inside.any() or inside.all():
            raise ValueError(
                f"class {attribute!r} has no images (or only those) among the {len(idx)} sampled"
            )
        z = space.encode(x)
        return two_groups(
            z[~inside],
            z[inside],
            method,
            f"class {attribute}",
            "the rest",
            n_with=int(inside.sum()),
            n_direction=len(idx),
        )
    return _caption_direction(space, attribute, dataset, names, method)


def two_groups(
    a: torch.Tensor, b: torch.Tensor, method: str, b_name: str, a_name: str, **more
) -> tuple[torch.Tensor, dict]:
    """The direction from latents ``a`` (without) to ``b`` (with), and how (``more`` joins it)."""
    gap = b.mean(0) - a.mean(0)
    if method == "mean":
        return gap, {"how": f"mean({b_name}) - mean({a_name})", **more}
    w = probe_normal(a.flatten(1), b.flatten(1)).view_as(gap)
    how = f"linear probe's normal ({a_name} vs {b_name}), times the mean gap along it"
    return w * (gap * w).sum(), {"how": how, **more}


def probe_normal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Unit normal (in the latent's own coordinates) of a logistic regression telling ``b`` from ``a``."""
    if len(a) < 1 or len(b) < 1:
        raise ValueError("a linear probe needs images on both sides of the attribute")
    z = torch.cat([a, b]).double()
    y = torch.cat([torch.zeros(len(a)), torch.ones(len(b))]).double()
    mu, sd = z.mean(0), z.std(0).clamp_min(1e-6)
    zs = (z - mu) / sd
    weight = torch.where(y > 0, len(z) / (2 * len(b)), len(z) / (2 * len(a)))  # balanced classes
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    c = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, c], max_iter=PROBE_ITERATIONS, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        out = (
            torch.nn.functional.binary_cross_entropy_with_logits(zs @ w + c, y, weight=weight)
        ) + PROBE_L2 * (w @ w)
        out.backward()
        return out

    with torch.enable_grad():
        opt.step(loss)
    normal = (w.detach() / sd).float()  # the boundary's normal back in the unstandardised latent
    return normal / normal.norm().clamp_min(1e-12)


def _caption_direction(
    space: LatentSpace, word: str, dataset, names: list[str], method: str = "mean"
) -> tuple[torch.Tensor, dict]:
    from ..data import captions as caps

    known = ", ".join(["thickness", *names[:12]])
    if not caps.has_caption_file(dataset):
        raise ValueError(
            f"unknown attribute {word!r}: not a class ({known}) and the data has no captions.tsv for caption words"
        )
    texts = caps.captions_for(dataset)
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    with_word = [i for i, t in enumerate(texts) if pattern.search(t)]
    if not with_word:
        raise ValueError(
            f"no caption of the data has the word {word!r}; try a class ({known}) or another word"
        )
    index = {t: i for i, t in enumerate(texts)}
    other = COUNTERPARTS.get(word)
    pairs = []
    if other is not None:
        for i in with_word:
            twin = re.sub(r"\s+", " ", pattern.sub(other, texts[i], count=1)).strip()
            if twin in index and index[twin] != i:
                pairs.append((i, index[twin]))
    if pairs:
        a = torch.tensor([j for _, j in pairs])
        b = torch.tensor([i for i, _ in pairs])
        za, zb = space.encode(dataset.batch(a)[0]), space.encode(dataset.batch(b)[0])
        example = f"paired captions ('{texts[pairs[0][1]]}' -> '{texts[pairs[0][0]]}', ...)"
        if method == "probe":
            return two_groups(za, zb, method, f"'{word}'", "its pair", pairs=len(pairs))
        return (zb - za).mean(0), {"how": example, "pairs": len(pairs)}
    rest = torch.tensor([i for i in range(len(texts)) if i not in set(with_word)][:2000])
    z_with = space.encode(dataset.batch(torch.tensor(with_word[:2000]))[0])
    z_rest = space.encode(dataset.batch(rest)[0])
    return two_groups(
        z_rest,
        z_with,
        method,
        f"captions with '{word}'",
        "the rest",
        n_with=len(z_with),
        n_direction=len(z_with) + len(z_rest),
    )


# ----------------------------------------------------------------------------- the edit
@torch.no_grad()
def edit(space: LatentSpace, images: torch.Tensor, d: torch.Tensor, amounts) -> torch.Tensor:
    """(len(amounts), B, C, H, W): each image decoded at latent + amount * d."""
    z = space.encode(images)
    return torch.stack([space.decode(z + float(a) * d) for a in amounts])


def run(
    run_dir,
    source: str,
    out,
    *,
    attribute: str | None = None,
    amount: float = 1.0,
    from_dir: str | None = None,
    to_dir: str | None = None,
    data_spec: str | None = None,
    n: int | None = None,
    method: str = "mean",
    allow_resize: bool = False,
    device: str = "auto",
) -> dict:
    """The CLI's edit: direction, edited images at ``amount`` (``out``) and the strip picture."""
    from .. import data, sampling
    from ..provenance import stamp
    from ..viz import save_grid
    from .files import check_out, read_sized, write_images

    out = check_out(out)
    if not (amount == amount and abs(amount) < 1e6):
        raise ValueError(f"--amount must be a finite number (got {amount})")
    from ..model_dir import read_config

    model, _ = sampling._model(run_dir, device)
    meta = read_config(run_dir)
    space = latent_space(model)
    c = model.config

    def read(src):
        return read_sized(src, c.image_size, c.channels, allow_resize, f"input {src}", model.registry_name)

    x = read(source)
    if from_dir or to_dir:
        if not (from_dir and to_dir):
            raise ValueError("--from-dir and --to-dir go together")
        d, how = direction(
            space,
            None,
            from_images=read(f"folder:{from_dir}"),
            to_images=read(f"folder:{to_dir}"),
            method=method,
        )
    else:
        spec = data_spec or (meta.get("data") or {}).get("spec")
        if not spec:
            raise ValueError(f"{run_dir} does not record its training data; give --data SPEC")
        dataset = data.load(spec, "train", image_size=c.image_size if spec.startswith("folder:") else None)
        d, how = direction(space, attribute, dataset, n=n, method=method)
    amounts = np.linspace(-amount, amount, STRIP).tolist()
    strip = edit(space, x[:16], d, amounts)  # (STRIP, B, C, H, W)
    edited = edit(space, x, d, [amount])[0]
    record = stamp() | {
        "generator": "genvision",
        "task": "edit",
        "model": str(run_dir),
        "attribute": attribute or f"{from_dir} -> {to_dir}",
        "amount": amount,
        "space": space.kind,
    }
    write_images(edited, out, record)
    strip_path = out.with_name(out.stem + "_strip.png")
    rows = torch.cat([x[:16].unsqueeze(1), strip.transpose(0, 1)], dim=1)  # (B, 1 + STRIP, C, H, W)
    save_grid(rows.flatten(0, 1), strip_path, nrow=1 + STRIP, metadata=record | {"amounts": amounts})
    summary = {"n": len(edited), "out": str(out), "strip": str(strip_path), "space": space.kind, **how}
    if attribute == "thickness":
        summary["thickness_change"] = float((thickness(edited) - thickness(x)).mean())
    return summary
