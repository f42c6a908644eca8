"""Fixtures for the dataset tests: the shared MNIST files (skip locally, fail under CI when missing)."""

from __future__ import annotations

import pytest
from gvtest import skip_or_fail

from genvision.data import shared_path

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(scope="session")
def mnist_dir():
    """The shared MNIST folder (``$GENVISION_SHARED/datasets/mnist`` or ``../shared/datasets/mnist``)."""
    directory = shared_path("datasets", "mnist")
    missing = [name for name in MNIST_FILES if not (directory / name).is_file()]
    if missing:
        message = (
            f"shared MNIST files missing in {directory} ({', '.join(missing)}); "
            f"set GENVISION_SHARED to the shared folder"
        )
        skip_or_fail(message)
    return directory
