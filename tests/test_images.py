"""Reading image files: Pillow's direct 8-bit path and imageio's plugins give the same pixels."""
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from metrics.lpips.images import read_image, to_rgb


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


def test_read_image_names_an_unreadable_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        read_image(str(path))
