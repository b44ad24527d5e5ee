"""`sotazoo sample`: grids drawn from the generators, from the site widget's seeded noise."""

import numpy as np
import pytest
import torch
from PIL import Image

import sotazoo
from sotazoo.cli import main
from sotazoo.errors import InputError
from sotazoo.sample import parse_seeds, write_grid
from sotazoo.transforms import seeded_normal


def _cell(grid: np.ndarray, i: int, nrow: int, h: int, w: int, pad: int = 1) -> np.ndarray:
    r, q = divmod(i, nrow)
    top, left = pad + r * (h + pad), pad + q * (w + pad)
    return grid[top : top + h, left : left + w]


def test_sample_cli_draws_what_the_generator_computes_for_each_seed(tmp_path, capsys):
    """Each cell of the grid is sagan_mini (our shipped weights) on the noise of its seed, the
    class of its column, mapped from [-1, 1] to 8 bits; the grid is 10 classes wide."""
    out = tmp_path / "grid.png"
    assert main(["sample", "sagan_mini", "--out", str(out), "--seeds", "3,8-14,40,41-43"]) == 0
    assert "12 samples of sagan_mini" in capsys.readouterr().out
    grid = np.asarray(Image.open(out).convert("RGB")).astype(np.float64) / 255
    assert grid.shape == (2 * 17 + 1, 10 * 17 + 1, 3)  # 12 cells: 2 rows of 16 + 1 dark pixel
    model = sotazoo.create_model("sagan_mini", weights="sotazoo")
    seeds = [3, 8, 9, 10, 11, 12, 13, 14, 40, 41, 42, 43]
    z = torch.from_numpy(np.stack([seeded_normal(s, 64) for s in seeds]))
    with torch.no_grad():
        expected = (model(z, torch.arange(12) % 10)[:, 0] * 0.5 + 0.5).clamp(0, 1).numpy()
    for i in range(12):
        cell = _cell(grid, i, 10, 16, 16)
        assert np.abs(cell[..., 0] - expected[i]).max() <= 0.5 / 255 + 1e-6
        assert (cell[..., 0] == cell[..., 2]).all()  # grey in all three channels
    assert grid[0].max() == 0 and grid[:, 0].max() == 0  # the dark border


def test_sample_fixed_label_and_unconditional_generator(tmp_path):
    out = tmp_path / "p.png"
    assert main(["sample", "progan_mini", "--out", str(out), "--seeds", "0-11", "--nrow", "4"]) == 0
    assert Image.open(out).size == (4 * 17 + 1, 3 * 17 + 1)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    main(["sample", "sagan_mini", "--out", str(a), "--seeds", "5", "--label", "7"])
    main(["sample", "sagan_mini", "--out", str(b), "--seeds", "5", "--label", "2"])
    assert np.asarray(Image.open(a)).tolist() != np.asarray(Image.open(b)).tolist()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seresnet50"], "is a classification model"),
        (["progan_mini", "--label", "1"], "unconditional"),
        (["sagan_mini", "--label", "10"], "classes 0..9"),
        (["sagan_mini", "--seeds", "9-2"], "is empty"),
        (["sagan_mini", "--seeds", "x"], "expected N, A-B"),
    ],
)
def test_sample_errors_name_the_problem_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "g.png"
    assert main(["sample", *args, "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_parse_seeds():
    assert parse_seeds("1,5,9-12") == [1, 5, 9, 10, 11, 12]
    assert parse_seeds("0-99") == list(range(100))
    with pytest.raises(InputError, match="at most"):
        parse_seeds("0-20000")


def test_write_grid_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves neither the grid nor a partial file behind."""
    import sotazoo.transforms

    def broken(image, path):
        path.write_bytes(b"half a png")
        raise KeyboardInterrupt

    monkeypatch.setattr(sotazoo.transforms, "save_png", broken)
    with pytest.raises(KeyboardInterrupt):
        write_grid(torch.zeros(4, 1, 8, 8), tmp_path / "g.png")
    assert not list(tmp_path.iterdir())
    with pytest.raises(InputError, match="PNG"):
        write_grid(torch.zeros(4, 1, 8, 8), tmp_path / "g.jpg")
    with pytest.raises(InputError, match=r"\(N, 1 or 3, H, W\)"):
        write_grid(torch.zeros(4, 8, 8), tmp_path / "g.png")
