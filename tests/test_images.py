"""Reading image files: libpng's path (imagecodecs), Pillow's direct 8-bit path and imageio's
plugins give the same pixels."""
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from metrics.lpips.data.images import read_image, to_rgb


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "LA"])
def test_read_image_matches_imageio(mode, tmp_path):
    rng = np.random.default_rng(4)
    rgba = rng.integers(0, 256, (13, 17, 4), dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (13, 17), dtype=np.uint16))
    elif mode != "RGBA":
        image = image.convert(mode)
    path = str(tmp_path / "image.png")
    image.save(path)
    got = read_image(path)
    expected = to_rgb(np.asarray(iio.imread(path)))
    assert got.dtype == expected.dtype and got.shape == (13, 17, 3)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA"])
def test_libpng_reads_8bit_pngs_as_pillow_does(mode, interlace, tmp_path, monkeypatch):
    import imagecodecs
    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 256, (37, 29, 4), dtype=np.uint8), "RGBA").convert(mode)
    path = str(tmp_path / "image.png")
    image.save(path, interlace=interlace)
    calls = []
    monkeypatch.setattr(imagecodecs, "png_decode",
                        lambda data, decode=imagecodecs.png_decode: calls.append(1) or decode(data))
    fast = read_image(path)
    assert calls == [1]  # libpng's path was taken
    np.testing.assert_array_equal(read_image(tmp_path / "image.png"), fast)  # a Path too
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # as if not installed: Pillow's path
    np.testing.assert_array_equal(fast, read_image(path))
    assert fast.dtype == np.uint8 and fast.shape == (37, 29, 3)


def test_corrupt_png_is_a_clear_error(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(str(good))
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:40])  # a header, then nothing
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        read_image(str(broken))


def test_read_image_names_an_unreadable_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        read_image(str(path))
