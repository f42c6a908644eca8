"""The degradations are linear with A A+ = I, and projecting onto their constraint is exact."""

from __future__ import annotations

import pytest
import torch

from genvision import seeding
from genvision.data import degrade

X = torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("task", degrade.TASKS)
def test_projection_meets_the_measurement_exactly_and_is_idempotent(task):
    mask = degrade.random_masks(3, 8, seeding.image_generators(3, 0)).double()
    y = degrade.degrade(task, X, mask=mask, scale=2)
    other = torch.rand_like(X) * 2 - 1
    p = degrade.project(task, other, y, mask=mask, scale=2)
    assert torch.allclose(degrade.degrade(task, p, mask=mask, scale=2), y, atol=1e-12)
    assert torch.allclose(degrade.project(task, p, y, mask=mask, scale=2), p, atol=1e-12)
    assert torch.allclose(degrade.project(task, X, y, mask=mask, scale=2), X, atol=1e-12)  # X already fits


def test_pseudo_inverses_are_right_inverses():
    y = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert torch.allclose(degrade.downsample(degrade.enlarge(y, 2), 2), y)
    luma = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    assert torch.allclose(degrade.luminance(degrade.luminance_pinv(luma)), luma)
    grey = torch.full((1, 3, 2, 2), 0.25, dtype=torch.float64)
    assert torch.allclose(degrade.luminance(grey), torch.full((1, 1, 2, 2), 0.25, dtype=torch.float64))


def test_masks_center_and_random_mix_are_seeded_per_image():
    c = degrade.center_mask(2, 8)
    assert c.sum().item() == 2 * 16 and c[0, 0, 2:6, 2:6].all()
    a = degrade.random_masks(9, 16, seeding.image_generators(9, 1))
    b = degrade.random_masks(4, 16, seeding.image_generators(4, 1))
    assert torch.equal(a[:4], b) and set(a.unique().tolist()) <= {0.0, 1.0}
    covered = a.mean(dim=(1, 2, 3))
    assert (covered > 0).all() and (covered < 1).all()
    with pytest.raises(ValueError, match="scale must be >= 2 and divide"):
        degrade.downsample(X, 3)
    with pytest.raises(ValueError, match="needs RGB"):
        degrade.luminance(X[:, :1])


@pytest.mark.parametrize("task", ["sr", "colorize"])
def test_fit_meets_the_measurement_inside_the_valid_range(task):
    y_true = torch.rand(4, 3, 8, 8, dtype=torch.float64) * 2 - 1
    y_true[0] = -1  # black: every pixel of a block must be -1 exactly
    y = degrade.degrade(task, y_true, scale=2)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64) * 2  # far outside [-1, 1]
    out = degrade.fit(task, x, y, scale=2)
    assert out.min() >= -1 and out.max() <= 1
    assert (degrade.degrade(task, out, scale=2) - y).abs().max() < 1e-9
