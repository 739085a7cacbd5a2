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


def _photo():
    """A smooth 48 x 64 RGB picture (JPEG keeps it nearly intact)."""
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    rgb = _photo()
    Image.fromarray(rgb).convert("CMYK").save(str(tmp_path / "cmyk.jpg"), quality=95)
    Image.fromarray(rgb).save(str(tmp_path / "rgb.jpg"), quality=95)
    cmyk, plain = read_image(str(tmp_path / "cmyk.jpg")), read_image(str(tmp_path / "rgb.jpg"))
    assert cmyk.shape == (48, 64, 3)
    # The same picture, not its inverted ink channels.
    assert np.abs(cmyk.astype(int) - plain.astype(int)).mean() < 4


def test_16bit_rgb_png_keeps_its_low_byte(tmp_path):
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    import imagecodecs
    (tmp_path / "deep.png").write_bytes(imagecodecs.png_encode(deep))
    got = read_image(str(tmp_path / "deep.png"))
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, deep)


def test_animations_are_refused(tmp_path):
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (0, 255)]
    for name in ("anim.png", "anim.webp", "anim.tif"):
        frames[0].save(str(tmp_path / name), save_all=True, append_images=frames[1:])
        with pytest.raises(ValueError, match="frames"):
            read_image(str(tmp_path / name))


def test_oversized_images_are_refused_before_decoding(tmp_path, monkeypatch):
    from metrics.lpips.data import images
    # A PNG whose header claims 20000 x 10000 pixels: refused from the header alone.
    small = tmp_path / "small.png"
    Image.fromarray(_photo()).save(str(small))
    data = bytearray(small.read_bytes())
    data[16:24] = (20000).to_bytes(4, "big") + (10000).to_bytes(4, "big")
    (tmp_path / "huge.png").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="200000000 pixels is more than"):
        read_image(str(tmp_path / "huge.png"))
    # Other formats, through Pillow, under the same limit.
    Image.fromarray(_photo()).save(str(tmp_path / "photo.bmp"))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(ValueError, match="3072 pixels is more than the 1000"):
        read_image(str(tmp_path / "photo.bmp"))


def test_exif_orientation_is_applied_as_the_reference_does(tmp_path):
    # Stored 64 wide and 48 high, tagged "rotate 90 degrees clockwise" (orientation 6): viewers
    # and OpenCV's imread (the reference's lpips.load_image) show it 48 wide and 64 high.
    stored = _photo()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(str(tmp_path / "turned.jpg"), quality=95, exif=exif)
    got = read_image(str(tmp_path / "turned.jpg"))
    assert got.shape == (64, 48, 3)
    upright = np.rot90(stored, k=-1)  # clockwise
    assert np.abs(got.astype(int) - upright.astype(int)).mean() < 4


def test_float_tiffs_are_read_in_0_1_and_other_ranges_refused(tmp_path):
    import tifffile  # comes with scikit-image; Pillow cannot write (or read) float RGB TIFFs
    rng = np.random.default_rng(1)
    values = rng.random((40, 50, 3), dtype=np.float32)
    tifffile.imwrite(str(tmp_path / "hdr.tif"), values, photometric="rgb")
    got = read_image(str(tmp_path / "hdr.tif"))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values)
    tifffile.imwrite(str(tmp_path / "bright.tif"), values * 4, photometric="rgb")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        read_image(str(tmp_path / "bright.tif"))
