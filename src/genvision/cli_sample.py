"""The CLI's ``sample`` verb: parsing only; calls :func:`genvision.sample` (and, for
``--style-mix``, the StyleGAN mixing picture of ``genvision.apps``).
"""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    s = sub.add_parser("sample", help="sample images from a model directory")
    s.add_argument("dir", help="model directory")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--out", help="FILE.png (grid) or FILE.npz (default DIR/samples/seed<S>_n<N>.png)")
    lab = s.add_mutually_exclusive_group()
    lab.add_argument("--label", type=int, help="class of every image (conditional models)")
    lab.add_argument("--labels", help="comma-separated classes, cycled over the images")
    lab.add_argument("--prompt", help="text models: the caption of every image")
    lab.add_argument("--prompts-file", help="text models: one prompt per line; image k uses line k (cycled)")
    s.add_argument(
        "--control",
        help="controlnet: IMG or npz:FILE of structure maps (bright = structure), image k follows map k (cycled)",
    )
    s.add_argument(
        "--sampler",
        help="diffusion: ddpm, ddim, dpm++2m, euler, heun, edm, consistency (default: the model's config)",
    )
    s.add_argument(
        "--steps", type=int, help="diffusion: network calls of the sampler (1 for a consistency model)"
    )
    s.add_argument("--eta", type=float, help="diffusion: ddim noise, 0 deterministic")
    s.add_argument("--guidance-scale", type=float)
    s.add_argument("--temperature", type=float)
    s.add_argument("--truncation", type=float)
    s.add_argument(
        "--style-mix",
        metavar="SEED_A,SEED_B",
        help="stylegan: a style-mixing picture instead: coarse styles from seed A's images (rows), fine "
        "from seed B's (columns), sqrt(--n) of each",
    )
    s.add_argument("--crossover", type=int, help="--style-mix: style inputs 0..K-1 from A (default: half)")
    s.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when torch sees it"
    )


def _labels(args, n: int):
    import torch

    if args.label is not None:
        return torch.full((n,), args.label, dtype=torch.long)
    if args.labels:
        try:
            values = [int(v) for v in args.labels.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--labels must be integers separated by commas (got {args.labels!r})") from None
        if not values:
            raise ValueError("--labels is empty")
        return torch.tensor([values[k % len(values)] for k in range(n)], dtype=torch.long)
    return None


def _prompts(args, n: int) -> list[str] | None:
    if args.prompt is not None:
        return [args.prompt] * n
    if args.prompts_file:
        try:
            lines = Path(args.prompts_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"cannot read --prompts-file {args.prompts_file}: {e.strerror or e}") from None
        lines = [line.strip() for line in lines if line.strip()]
        if not lines:
            raise ValueError(f"--prompts-file {args.prompts_file} holds no prompt (one per line)")
        return [lines[k % len(lines)] for k in range(n)]
    return None


def cmd_sample(args) -> int:
    from . import sample

    if args.n < 1:
        raise ValueError(f"--n must be >= 1 (got {args.n})")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1 (got {args.batch_size})")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0 (got {args.seed})")
    if args.style_mix is not None:
        return _style_mix(args)
    if args.crossover is not None:
        raise ValueError("--crossover goes with --style-mix SEED_A,SEED_B")
    out = Path(args.out) if args.out else Path(args.dir) / "samples" / f"seed{args.seed}_n{args.n}.png"
    if out.suffix not in (".png", ".npz"):
        raise ValueError(f"--out must end in .png or .npz (got {out.name})")
    options = {
        k: getattr(args, k)
        for k in ("sampler", "steps", "eta", "guidance_scale", "temperature", "truncation")
    }
    result = sample(
        args.dir,
        args.n,
        seed=args.seed,
        labels=_labels(args, args.n),
        prompts=_prompts(args, args.n),
        control=args.control,
        out=out,
        batch_size=args.batch_size,
        device=args.device,
        **options,
    )
    images, seconds = result["images"], result["seconds"]
    print(f"start: {result['start']}")
    print(f"output: {tuple(images.shape)} float in [{images.min():.3f}, {images.max():.3f}]")
    print(f"wrote {result['path']}")
    print(f"ok: {args.n} images in {seconds:.1f}s ({args.n / max(seconds, 1e-9):.1f} img/s)")
    return 0


def _style_mix(args) -> int:
    from .sampling import style_mix

    given = [
        f for f in ("label", "labels", "prompt", "prompts_file", "control") if getattr(args, f) is not None
    ]
    if given:
        raise ValueError(f"--style-mix takes no --{given[0].replace('_', '-')}")
    try:
        seed_a, seed_b = (int(v) for v in args.style_mix.split(","))
    except ValueError:
        raise ValueError(f"--style-mix takes two seeds, SEED_A,SEED_B (got {args.style_mix!r})") from None
    out = args.out or Path(args.dir) / "samples" / f"style_mix_{seed_a}_{seed_b}.png"
    result = style_mix(
        args.dir,
        seed_a,
        seed_b,
        crossover=args.crossover,
        n=args.n,
        out=out,
        device=args.device,
        truncation=args.truncation,
    )
    print(result["record"]["images"])
    print(f"wrote {result['path']}")
    return 0


COMMANDS = {"sample": cmd_sample}
