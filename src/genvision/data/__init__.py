"""Datasets: ``load(SPEC, split)`` returns an in-memory :class:`ImageDataset`.

    from genvision import data
    ds = data.load("digits")                        # train split, uint8 (1347, 1, 8, 8), levels 17
    x, y = ds.batch(torch.arange(16))               # float32 (16, 1, 8, 8) in [-1, 1], int64 (16,)
    ds = data.load("folder:photos", "test", image_size=32)
    val = data.load("digits", "val")                # the validation slice of train (~11%)

Specs: ``digits``, ``mnist:DIR``, ``binary-mnist:DIR``, ``folder:DIR``, ``npz:FILE``,
``torchvision:NAME[:ROOT]`` (INTERFACES.md, "Datasets").
"""

from .datasets import ImageDataset, load, parse_spec, shared_path
from .transforms import to_float, to_levels, to_uint8_255

__all__ = ["load", "ImageDataset", "to_float", "to_levels", "to_uint8_255", "parse_spec", "shared_path"]
