"""What a compare runs: data, models, budget, seeds and evaluation size, checked before anything is written.

A :class:`Plan` is the user's options made exact: the model names spelled out (``all`` means every
registry name that trains from data alone: its class declares no ``parents``, or only the
``autoencoder`` that ``genvision train`` trains first as a stage of the same run), the seeds
as integers, one training length. It is what ``compare.json`` records, so a ``--resume`` with other
options is refused by comparing plans. Every check raises ``ValueError`` in one line naming the
problem and the fix, before the compare directory is created.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .. import data as datasets
from .. import registry
from ..nn import text
from ..training.staged import STAGE, split_length

#: ``--quick``: one representative per family, by family; a new family adds its line here
QUICK_MODELS = {
    "diffusion": "ddpm",
    "vae": "vae",
    "gan": "sngan",
    "autoregressive": "gated-pixelcnn",
    "flows": "glow",
}
#: ``--quick``: minutes of training per model, and the data
QUICK_MINUTES = 2.0
QUICK_DATA = "digits"
#: ``--quick``: families whose bits/dim is left out (the diffusion bound needs a denoiser pass per
#: noise level per test image; ``genvision evaluate RUN --metrics bpd`` gives it)
QUICK_WITHOUT_BPD = ("diffusion",)
DEFAULT_MINUTES = 5.0
DEFAULT_DATA = "digits"
#: fractions of the budget at which FID is measured; the last one is the full evaluation
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Plan:
    """A compare, exactly.

    Attributes:
        data: dataset spec every model trains and is evaluated on.
        models: registry names, in table order.
        seeds: training seeds; evaluation ``k`` of every model uses the same seed, so all models
            are sampled with the same per-image seeds.
        minutes: training minutes per model (None when ``steps`` is set).
        steps: training length in steps instead (API only, for tests and scripted checks).
        n: generated images per evaluation; None = ``evaluate``'s default for the data.
        quick: ``--quick`` (no diffusion bits/dim).
        model_config: registry name -> config overrides (API only; the CLI keeps every model's
            defaults, since the question is which model to train as shipped).
        skipped: registry name -> why ``--models all`` left it out (conditional models on
            unlabeled data).
    """

    data: str
    models: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    minutes: float | None = DEFAULT_MINUTES
    steps: int | None = None
    n: int | None = None
    quick: bool = False
    model_config: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**asdict(self), "models": list(self.models), "seeds": list(self.seeds)}

    @classmethod
    def from_json(cls, values: dict) -> Plan:
        try:
            return cls(
                **{
                    **values,
                    "models": tuple(values["models"]),
                    "seeds": tuple(int(s) for s in values["seeds"]),
                }
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"damaged plan in compare.json ({e}); start a new compare in another --out"
            ) from None

    def segments(self) -> list[tuple[float, dict]]:
        """(fraction of the budget, trainer length) at each checkpoint, e.g. (0.25, {"minutes": 1.25})."""
        if self.steps is None:
            return [(f, {"minutes": self.minutes * f}) for f in CHECKPOINTS]
        out: list[tuple[float, dict]] = []
        for f in CHECKPOINTS:
            target = max(1, math.ceil(self.steps * f))
            if out and out[-1][1]["steps"] == target:
                out.pop()  # a short run: two checkpoints on the same step count as one
            out.append((target / self.steps, {"steps": target}))
        return out

    def staged_segments(self, ae_fraction: float) -> tuple[dict, list[tuple[float, dict | None]]]:
        """A model trained in stages (:func:`staged`): the autoencoder's length (its share of the
        whole budget, as ``genvision train`` gives it, trained first), and at each checkpoint of
        :meth:`segments` the latent model's length so far (None while the budget so far is all
        the autoencoder's)."""
        ae, _ = split_length({"minutes": self.minutes, "steps": self.steps}, ae_fraction)
        ((key, first),) = ae.items()
        out = []
        for fraction, length in self.segments():
            rest = length[key] - first
            out.append((fraction, {key: rest} if rest > 0 else None))
        return ae, out

    def wants_bpd(self, family: str) -> bool:
        return not (self.quick and family in QUICK_WITHOUT_BPD)


def trains_from_data(name: str) -> bool:
    """Whether registry model ``name`` trains from data alone and samples it: its class declares no
    parents (or is :func:`staged`), and ``sample`` draws from a learned model (not an
    autoencoder's decoder check)."""
    cls, _ = registry.resolve(name)
    return (not cls.parents or staged(name)) and cls.samples_the_data


def staged(name: str) -> bool:
    """Whether ``name`` is built on an autoencoder only, which the run trains first from the same
    data (``ldm`` and its kin: the run directory holds it as the sub-run ``autoencoder/``)."""
    return set(registry.resolve(name)[0].parents) == {STAGE}


def conditional(name: str) -> bool:
    """Class-conditional, or a text model (which needs labels or captions to train)."""
    cls, overrides = registry.resolve(name)
    return bool(overrides.get("conditional")) or cls.takes_prompts


def family(name: str) -> str:
    return registry.resolve(name)[0].family


def make_plan(
    data=None,
    models=None,
    minutes=None,
    seeds=None,
    n=None,
    quick=False,
    steps=None,
    model_config=None,
    recorded: Plan | None = None,
) -> Plan:
    """The plan of these options; with ``recorded`` (``--resume``), that plan, refusing any that differ.

    Raises:
        ValueError: one line naming the bad option and the fix.
    """
    seeds = parse_seeds(seeds)
    check_length(minutes, steps)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise ValueError(f"--n must be an integer >= 2 (got {n!r}); it is the generated images per model")
    if recorded is not None:
        return _check_resume(recorded, data, models, minutes, seeds, n, quick, steps)
    data = data or (QUICK_DATA if quick else DEFAULT_DATA)
    train_ds = datasets.load(data, "train")  # one-line errors for a bad spec, before anything is written
    names, skipped = select_models(models, quick, labelled=train_ds.num_classes >= 2, data=data)
    overrides = dict(model_config or {})
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"model_config names {', '.join(unknown)}, which is not compared; compared: {names}")
    if steps is None and minutes is None:
        minutes = QUICK_MINUTES if quick else DEFAULT_MINUTES
    return Plan(
        data=data,
        models=tuple(names),
        seeds=seeds or (0,),
        minutes=None if steps is not None else float(minutes),
        steps=steps,
        n=n,
        quick=bool(quick),
        model_config=overrides,
        skipped=skipped,
    )


def select_models(models, quick: bool, *, labelled: bool, data: str) -> tuple[list[str], dict]:
    """(registry names, {name: why skipped}) of ``models``: "all", "a,b,c", a list, or None (all / quick)."""
    everyone = [m for m in registry.MODELS if trains_from_data(m)]
    if models is None:
        models = list(QUICK_MODELS.values()) if quick else "all"
    if models == "all" or models == ["all"]:
        unlabeled = {m: f"class-conditional and {data} is unlabeled" for m in everyone if conditional(m)}
        if labelled:
            unlabeled = {}
        if not text.available():
            why = f"needs the text encoder ({text.INSTALL})"
            unlabeled.update({m: why for m in everyone if registry.resolve(m)[0].takes_prompts})
        return [m for m in everyone if m not in unlabeled], unlabeled
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not models:
        raise ValueError(
            "--models is empty; give all or registry names separated by commas (see `genvision models`)"
        )
    names: list[str] = []
    for m in models:
        if m not in registry.MODELS:
            raise ValueError(
                f"unknown model {m!r:.60} in --models; choose from {', '.join(everyone)} (or all)"
            )
        if not trains_from_data(m):
            roles = ", ".join(registry.resolve(m)[0].parents)
            if not roles:
                raise ValueError(
                    f"{m} only encodes and decodes (it has no learned prior to sample); drop it from --models"
                )
            raise ValueError(
                f"{m} is built on another model ({roles}) and cannot train from data alone; drop it from "
                "--models (--models all takes every model that can)"
            )
        if conditional(m) and not labelled:
            raise ValueError(f"{m} is class-conditional but {data} is unlabeled; drop it from --models")
        if m in names:
            raise ValueError(f"--models lists {m} twice; give each model once")
        names.append(m)
    return names, {}


def parse_seeds(seeds) -> tuple[int, ...] | None:
    """Seeds from "1,2,3", an int or a list of ints; None stays None (the default, or the recorded ones)."""
    if seeds is None:
        return None
    items = seeds.split(",") if isinstance(seeds, str) else [seeds] if isinstance(seeds, int) else list(seeds)
    values = []
    for s in items:
        digits = isinstance(s, str) and s.strip().isdigit()
        if isinstance(s, bool) or not (digits or isinstance(s, int) and s >= 0):
            raise ValueError(
                f"--seeds must be integers >= 0 separated by commas, e.g. 0,1,2 (got {seeds!r:.60})"
            )
        values.append(int(s))
    if not values:
        raise ValueError("--seeds is empty; give integers >= 0 separated by commas, e.g. 0,1,2")
    if len(set(values)) != len(values):
        raise ValueError(f"--seeds lists a seed twice ({seeds!r:.60}); give each seed once")
    return tuple(values)


def check_length(minutes, steps) -> None:
    if minutes is not None and steps is not None:
        raise ValueError("give minutes or steps, not both")
    if minutes is not None and (
        isinstance(minutes, bool)
        or not isinstance(minutes, (int, float))
        or not (math.isfinite(minutes) and minutes > 0)
    ):
        raise ValueError(
            f"--minutes must be a number > 0 (got {minutes!r}); it is each model's training time"
        )
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be an integer >= 1 (got {steps!r})")


def _check_resume(recorded: Plan, data, models, minutes, seeds, n, quick, steps) -> Plan:
    """The recorded plan, after refusing any option given now that differs from it."""
    given = {
        "--data": (data, recorded.data),
        "--minutes": (None if minutes is None else float(minutes), recorded.minutes),
        "--seeds": (seeds, recorded.seeds),
        "--n": (n, recorded.n),
        "steps": (steps, recorded.steps),
    }
    if models is not None:
        names, _ = select_models(models, recorded.quick, labelled=True, data=recorded.data)
        if models != "all" and tuple(names) != recorded.models:
            given["--models"] = (",".join(names), ",".join(recorded.models))
    if quick and not recorded.quick:
        given["--quick"] = (True, False)
    for option, (now, was) in given.items():
        if now is not None and now != was:
            shown = ",".join(map(str, was)) if isinstance(was, tuple) else was
            raise ValueError(
                f"--resume: this compare was started with {option} {shown}; drop {option} (or start a new --out)"
            )
    return recorded
