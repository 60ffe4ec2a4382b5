"""``read_images``: image files decoded into uint8 arrays, converted and resized."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pytest

import nebula

Image = pytest.importorskip("PIL.Image", reason="needs Pillow (requirements-dev.txt)")


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    for index in range(3):
        pixels = np.full((8, 12, 3), index * 40, dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"img{index}.png")
    Image.fromarray(np.zeros((20, 10, 3), dtype=np.uint8)).save(tmp_path / "big.jpg")
    (tmp_path / "notes.txt").write_text("not an image\n")
    return tmp_path


def test_images_become_arrays_and_batches(image_dir: Path) -> None:
    ds = nd.read_images(image_dir / "img*.png", include_paths=True)
    rows = ds.take_all()
    assert [Path(row["path"]).name for row in rows] == ["img0.png", "img1.png", "img2.png"]
    batch = ds.take_batch(3)["image"]
    assert batch.shape == (3, 8, 12, 3) and batch.dtype == np.uint8
    assert [int(image[0, 0, 0]) for image in batch] == [0, 40, 80]


def test_size_and_mode_give_every_image_one_shape(image_dir: Path) -> None:
    ds = nd.read_images(image_dir, size=(4, 6), mode="L")  # skips notes.txt
    batch = ds.take_batch(10)["image"]
    assert batch.shape == (4, 4, 6)
    with pytest.raises(ValueError, match="height, width"):
        nd.read_images(image_dir, size=(4,))  # type: ignore[arg-type]


def test_without_pillow_the_error_says_what_to_install(
    image_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        nd.read_images(image_dir)
