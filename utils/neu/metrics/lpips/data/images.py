# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Image arrays and files -> the metric's input: float32 (N, 3, H, W) in [-1, 1]."""
import os

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _describe(arr):
    return "shape {}, dtype {}, min {}, max {}".format(
        arr.shape, arr.dtype, arr.min() if arr.size else "-", arr.max() if arr.size else "-")


def to_rgb(arr):
    """H x W, H x W x 1 (gray), H x W x 2 (gray and alpha), H x W x 3 (RGB) or H x W x 4 (RGBA)
    -> H x W x 3, alpha dropped."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError("expected an H x W image with 1 to 4 channels, got shape {}".format(
            arr.shape))
    if arr.shape[2] <= 2:
        return np.repeat(arr[:, :, :1], 3, axis=2)
    return arr[:, :, :3]


def check_unit_range(arr):
    """Raises what :func:`to_unit_range` would for ``arr`` (TypeError for another type,
    ValueError for floats outside [0, 1]), without converting it."""
    if arr.dtype in (np.uint8, np.uint16):
        return
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError("images must be uint8, uint16 or floating point in [0, 1]; got {}".format(
            _describe(arr)))
    if arr.size and (not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1):
        raise ValueError("float images must lie in [0, 1]; got {}".format(_describe(arr)))


def to_unit_range(arr):
    """uint8 (0..255), uint16 (0..65535) or float in [0, 1] -> float32 in [0, 1]."""
    check_unit_range(arr)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32)


def to_model_input(images):
    """H x W x 3 or N x H x W x 3 (channel last, ranges as :func:`to_unit_range`)
    -> float32 N x 3 x H x W in [-1, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[3] != 3:
        raise ValueError("expected H x W x 3 or N x H x W x 3 images, got shape {}".format(
            arr.shape))
    return to_unit_range(arr).transpose(0, 3, 1, 2) * 2.0 - 1.0


def resize_to(img, shape):
    """Resizes an H x W x 3 uint8/uint16 image bicubically (per channel, in float) to the
    height and width of ``shape``: float32 in [0, 1]."""
    from PIL import Image
    unit = img.astype(np.float32) / np.iinfo(img.dtype).max
    h, w = shape[:2]
    channels = [np.asarray(Image.fromarray(unit[:, :, c], mode="F").resize((w, h), Image.BICUBIC))
                for c in range(3)]
    return np.clip(np.stack(channels, axis=2), 0, 1)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types whose pixels libpng returns as they are stored, as Pillow does for 8 bits:
# gray, RGB, gray + alpha, RGBA (palettes are expanded differently: they take Pillow's path).
_DIRECT_PNG_COLOUR_TYPES = (0, 2, 4, 6)
# Pillow's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS), for every reader: larger
# images are refused before decoding, with a message, instead of exhausting memory.
MAX_PIXELS = 178956970
# Pillow image modes converted to RGB by Pillow itself (their raw channels are not RGB).
_CONVERTED_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "1")


def _check_pixels(width, height):
    if width * height > MAX_PIXELS:
        raise ValueError("{} x {} = {} pixels is more than the {} this reads (Pillow's "
                         "decompression-bomb limit); scale it down first".format(
                             width, height, width * height, MAX_PIXELS))


def _png_chunks_before_data(data):
    """{type: offset of its data} of the chunks before the first IDAT."""
    chunks, at = {}, 8
    while at + 8 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        kind = data[at + 4:at + 8]
        if kind == b"IDAT":
            break
        chunks.setdefault(kind, at + 8)
        at += 12 + length
    return chunks


def read_png(path):
    """The pixels of an 8- or 16-bit gray, RGB or RGBA PNG decoded by libpng through
    imagecodecs (uint8 or uint16; Pillow reads 16-bit RGB as 8 bits, and takes twice the
    time on small images: 110 against 225 us a 64 px image, measured), else None (other
    files, palette PNGs, or imagecodecs not installed). Animated PNGs are refused."""
    try:
        import imagecodecs
    except ImportError:
        return None
    if not os.fspath(path).lower().endswith(".png"):
        return None
    with open(path, "rb", buffering=0) as f:  # one read of the whole file
        data = f.read()
    # The signature, then IHDR: length and type, width, height, bit depth, colour type.
    if (len(data) < 26 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR"
            or data[24] not in (8, 16) or data[25] not in _DIRECT_PNG_COLOUR_TYPES):
        return None
    _check_pixels(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    animation = _png_chunks_before_data(data).get(b"acTL")  # its data: frames, plays
    if animation is not None:
        count = int.from_bytes(data[animation:animation + 4], "big")
        raise ValueError("an animated PNG ({} frames); LPIPS compares single images: save "
                         "the frame to score as its own file".format(count))
    try:
        return imagecodecs.png_decode(data)
    except (RuntimeError, ValueError) as e:  # imagecodecs.PngError, or its message undecodable
        raise ValueError("corrupt PNG ({})".format(e)) from None


def _read_with_pillow(path):
    """The file's pixels when Pillow decodes it: gray, RGB and RGBA as stored (read directly:
    imageio's wrapping costs about a fifth of a PNG's decoding); CMYK, YCbCr, Lab, HSV and
    bilevel converted to RGB by Pillow. None for the rest (palettes, 16 bits, float TIFFs):
    imageio's plugins take those."""
    from PIL import Image, ImageOps
    with Image.open(path) as opened:
        _check_pixels(*opened.size)
        frames = getattr(opened, "n_frames", 1)
        if frames > 1:
            raise ValueError("{} frames (an animation or a multi-page file); LPIPS compares "
                             "single images: save the frame to score as its own file".format(
                                 frames))
        turned = opened.getexif().get(0x0112, 1) not in (0, 1)  # EXIF Orientation tag
        image = ImageOps.exif_transpose(opened) if turned else opened
        if image.mode in ("L", "RGB", "RGBA"):
            return np.asarray(image)
        if image.mode in _CONVERTED_MODES:
            return np.asarray(image.convert("RGB"))
        return None


def _read_tiff_with_libtiff(path):
    """A TIFF Pillow cannot open (float32 RGB, from scientific and HDR pipelines), decoded by
    libtiff through imagecodecs; None when it is no TIFF or imagecodecs is missing."""
    if not os.fspath(path).lower().endswith((".tif", ".tiff")):
        return None
    try:
        import imagecodecs
    except ImportError:
        return None
    with open(path, "rb") as f:
        data = f.read()
    try:
        return imagecodecs.tiff_decode(data)
    except Exception as e:  # imagecodecs.TiffError, or its message undecodable
        raise ValueError("cannot decode TIFF ({})".format(e)) from None


def _check_float(arr, path):
    """Floating-point images (float TIFFs) are read as [0, 1]: other values are refused, not
    clipped or rescaled into a plausible score."""
    arr = arr.astype(np.float32)
    if arr.size and (not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1):
        raise ValueError("{}: a floating-point image's values must lie in [0, 1]; got {}".format(
            path, _describe(arr)))
    return arr


# How the files of IMAGE_EXTENSIONS start: (offset, bytes). Anything else is refused before it
# is read (a huge file named .png was read whole before any decoder looked at it).
_SIGNATURES = ((0, _PNG_SIGNATURE), (0, b"\xff\xd8\xff"), (0, b"BM"), (0, b"II*\x00"),
               (0, b"MM\x00*"), (0, b"II+\x00"), (0, b"MM\x00+"), (8, b"WEBP"))


def check_image_file(path):
    """Raises ValueError unless ``path`` is a regular file that starts as a PNG, JPEG, BMP, TIFF
    or WebP does, without reading more than its first bytes: a FIFO, a device or a folder is
    refused before it is opened (a FIFO would block), a file of another kind before it is read."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ValueError("cannot read image {}: {}".format(path, e.strerror or e)) from None
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"
                if stat.S_ISSOCK(mode) else "not a regular file")
        raise ValueError("cannot read image {}: it is {}, not a file".format(path, kind))
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ValueError("cannot read image {}: {}".format(path, e.strerror or e)) from None
    if not any(head[at:at + len(sig)] == sig for at, sig in _SIGNATURES):
        raise ValueError("cannot read image {}: not a PNG, JPEG, BMP, TIFF or WebP file (it "
                         "starts with {!r})".format(path, head[:8]))


def read_image(path):
    """Reads an image file as H x W x 3 (gray made RGB, alpha dropped): uint8, uint16, or
    float32 in [0, 1] (float TIFFs). JPEGs and TIFFs are turned as their EXIF orientation says,
    as viewers and the reference's loader (OpenCV's ``imread``) do."""
    import imageio.v3 as iio
    from PIL import Image
    check_image_file(path)
    try:
        arr = read_png(path)
        if arr is None:
            try:
                arr = _read_with_pillow(path)
            except Image.UnidentifiedImageError:
                arr = _read_tiff_with_libtiff(path)
                if arr is None:
                    raise
        if arr is None:  # 16-bit colour, float gray, TIFF variants...: imageio's plugins
            arr = np.asarray(iio.imread(path))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError("cannot read image {}: {}".format(path, e)) from None
    if arr.dtype.kind == "f":
        arr = _check_float(arr, path)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ValueError("{}: unsupported pixel type {} (8- and 16-bit integer images and "
                         "float images in [0, 1] are)".format(path, arr.dtype))
    try:
        return to_rgb(arr)
    except ValueError as e:
        raise ValueError("{}: {}".format(path, e)) from None
