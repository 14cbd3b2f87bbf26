"""sdelang.score.plots: files are written, the grid tiles the images in order, the scatter's axes
follow the data (no fixed ±3.5)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sdelang.score.plots import as_images, data_limits, image_grid, scatter_panels, tile

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def is_png(path) -> bool:
    return Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("shape", [(10, 8, 8), (10, 1, 8, 8), (10, 3, 4, 6)])
def test_image_grid_writes_a_png(tmp_path, shape):
    samples = np.random.default_rng(0).uniform(-1.5, 1.5, shape)
    path = image_grid(samples, tmp_path / "sub" / "grid.png", title="test")
    assert is_png(path)


def test_image_grid_takes_torch_and_jax_arrays(tmp_path):
    x = np.zeros((4, 1, 8, 8))
    for name in ("torch", "jax.numpy"):
        lib = pytest.importorskip(name)
        array = lib.zeros((4, 1, 8, 8)) if name == "torch" else lib.asarray(x)
        assert is_png(image_grid(array, tmp_path / f"{name}.png"))


def test_tile_places_images_row_by_row_with_padding():
    images = np.stack([np.full((2, 3), k, float) for k in range(5)])
    grid = tile(images, ncol=3, pad=1, fill=-1.0)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1)
    assert grid[1, 1] == 0 and grid[1, 5] == 1 and grid[1, 9] == 2 and grid[4, 1] == 3 and grid[4, 5] == 4
    assert grid[4, 9] == -1.0 and grid[0, 0] == -1.0       # the empty slot and the padding


def test_as_images_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"\(n, H, W\) or \(n, C, H, W\)"):
        as_images(np.zeros((4, 64)))
    with pytest.raises(ValueError, match="channels"):
        as_images(np.zeros((4, 2, 8, 8)))


@pytest.mark.parametrize("scale, offset", [(0.01, 0.0), (1.0, 0.0), (40.0, 100.0)])
def test_scatter_limits_follow_the_data(tmp_path, scale, offset):
    rng = np.random.default_rng(1)
    data = offset + scale * rng.standard_normal((2000, 2))
    (x_lo, x_hi), (y_lo, y_hi) = data_limits(data)
    for lo, hi, col in ((x_lo, x_hi, data[:, 0]), (y_lo, y_hi, data[:, 1])):
        assert lo < np.quantile(col, 0.01) and hi > np.quantile(col, 0.99)
        assert hi - lo < 8 * scale            # about ±2.6 sd plus padding, not a fixed ±3.5
        assert lo > col.min() - 8 * scale
    path = scatter_panels(tmp_path / "scatter.png", data, {"a": data[:500], "b": data[500:1000] * 10})
    assert is_png(path)


def test_scatter_limits_ignore_non_finite_points():
    data = np.array([[0.0, 0.0], [1.0, 2.0], [np.nan, 5.0], [np.inf, 1.0]])
    (x_lo, x_hi), (y_lo, y_hi) = data_limits(data, quantile=1.0, pad=0.0)
    assert (x_lo, x_hi, y_lo, y_hi) == (0.0, 1.0, 0.0, 2.0)


def test_score_report_plot_uses_the_data_limits(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("score_report", None)
    import score_report
    import matplotlib.pyplot as plt

    seen = {}
    original = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        seen["xlim"] = fig.axes[0].get_xlim()
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    data = 20.0 * np.random.default_rng(2).standard_normal((1000, 2))
    score_report.plot(str(tmp_path / "r.png"), data, {"em": data}, "title")
    assert is_png(tmp_path / "r.png")
    assert seen["xlim"] == pytest.approx(data_limits(data)[0])
    assert seen["xlim"][1] > 30
