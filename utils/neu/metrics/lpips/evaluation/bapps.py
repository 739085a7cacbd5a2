# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Human judgments on disk: the BAPPS layout (Zhang et al. 2018) read as the reference's data
loaders read it (``data/dataset/twoafc_dataset.py``, ``jnd_dataset.py``,
``data/image_folder.py``), and judgment CSV files for people with their own data.

BAPPS, under ``<dataroot>/<mode>/<dataset>/``:
  * 2AFC: ``ref/``, ``p0/``, ``p1/`` (patches) and ``judge/`` (``.npy``, one value each: the
    fraction of people who chose p1);
  * JND: ``p0/``, ``p1/`` and ``same/`` (``.npy``: the fraction who saw no difference).
Each folder is walked recursively and its files sorted by path; the k-th files of the folders
form the k-th item. Patches are read as RGB and resized to 64 pixels on the short side by
Pillow's bilinear filter (what torchvision's ``Resize(64)`` does to a Pillow image).
"""
import collections
import csv
import io
import os

import numpy as np

from ..data.images import read_png, to_rgb
from ..data.pairs import InputError

MODES = ("2afc", "jnd")
IMAGE_FOLDERS = {"2afc": ("ref", "p0", "p1"), "jnd": ("p0", "p1")}
JUDGMENT_FOLDER = {"2afc": "judge", "jnd": "same"}
# The reference's image_folder.py: these endings exactly (its comparison is case-sensitive).
IMAGE_ENDINGS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP")
LOAD_SIZE = 64

Judged = collections.namedtuple("Judged", ["name", "mode", "items", "judgments"])
Judged.__doc__ = """A set of judged items: ``items`` are tuples of image paths, (ref, p0, p1)
for 2AFC and (p0, p1) for JND; ``judgments`` (N,) float64, the fraction of people who chose
p1 (2AFC) or saw no difference (JND)."""


class DatasetError(InputError):
    """A judged dataset is missing, incomplete or malformed."""


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError("unknown mode {!r}; expected one of {}".format(mode, ", ".join(MODES)))


def _walk(folder, endings):
    if not os.path.isdir(folder):
        raise DatasetError("{} is not a directory".format(folder))
    found = [os.path.join(root, name) for root, _, names in os.walk(folder)
             for name in names if name.endswith(endings)]
    return sorted(found)


def _judgment(path):
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DatasetError("cannot read judgment {}: {}".format(path, e)) from None
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise DatasetError("{} must hold one number, found shape {} of {}".format(
            path, value.shape, value.dtype))
    return float(value.reshape(-1)[0])


def _check_judgments(values, where):
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values > 1))
    if bad.size:
        raise DatasetError("{}: judgment {} is {}, outside [0, 1]".format(
            where, bad[0] + 1, values[bad[0]]))
    return values


def read_folder(root, mode, name=None):
    """The items and judgments of one BAPPS dataset folder ``root`` (holding ``ref/`` ...)."""
    _check_mode(mode)
    folders = list(IMAGE_FOLDERS[mode]) + [JUDGMENT_FOLDER[mode]]
    if not os.path.isdir(root):
        raise DatasetError("data set {} not found".format(root))
    absent = [f + "/" for f in folders if not os.path.isdir(os.path.join(root, f))]
    if absent:
        raise DatasetError("{} lacks {} (a {} data set holds {})".format(
            root, ", ".join(absent), mode, ", ".join(f + "/" for f in folders)))
    columns = [_walk(os.path.join(root, f), IMAGE_ENDINGS) for f in IMAGE_FOLDERS[mode]]
    judge_dir = os.path.join(root, JUDGMENT_FOLDER[mode])
    judge_paths = _walk(judge_dir, (".npy",))
    counts = [len(c) for c in columns] + [len(judge_paths)]
    if len(set(counts)) != 1 or counts[0] == 0:
        listing = ", ".join("{}/ {}".format(f, n) for f, n in zip(folders, counts))
        raise DatasetError("{}: the folders must hold as many files each, and some: {}".format(
            root, listing))
    judgments = _check_judgments([_judgment(p) for p in judge_paths], judge_dir)
    return Judged(name or root, mode, list(zip(*columns)), judgments)


def read_csv(path, mode, name=None):
    """Items and judgments from a CSV file with a header: ``ref,p0,p1,judge`` (2AFC) or
    ``p0,p1,same`` (JND); image paths relative to the CSV's folder; judgments in [0, 1]."""
    _check_mode(mode)
    columns = list(IMAGE_FOLDERS[mode]) + [JUDGMENT_FOLDER[mode]]
    if not os.path.isfile(path):
        raise DatasetError("judgment file {} not found".format(path))
    base = os.path.dirname(os.path.abspath(path))
    with open(path, "rb") as f:
        data = f.read()
    try:  # a spreadsheet's byte-order mark is not part of the header
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError("{}, line {}: not UTF-8 text ({}); save the file as UTF-8".format(
            path, data[:e.start].count(b"\n") + 1, e.reason)) from None
    try:
        reader = csv.reader(io.StringIO(text, newline=""))  # CRLF or LF line ends
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DatasetError("{} lacks the column(s) {}; a {} file has the header {}".format(
                path, ", ".join(missing), mode, ",".join(columns)))
        rows = [(reader.line_num, row) for row in reader if any(v.strip() for v in row)]
    except csv.Error as e:
        raise DatasetError("{}, line {}: {}".format(path, reader.line_num, e)) from None
    if not rows:
        raise DatasetError("{} holds no rows".format(path))
    where = {c: header.index(c) for c in columns}
    items, judgments = [], []
    for line, values in rows:
        if len(values) < len(header) or any(not values[where[c]].strip() for c in columns):
            raise DatasetError("{}, line {}: {} value(s) where the header has {} ({})".format(
                path, line, len([v for v in values if v.strip()]), len(header),
                ",".join(header)))
        row = {c: values[where[c]] for c in columns}
        paths = tuple(os.path.join(base, row[c].strip()) for c in columns[:-1])
        absent = [p for p in paths if not os.path.isfile(p)]
        if absent:
            raise DatasetError("{}, line {}: {} not found".format(path, line, absent[0]))
        try:
            judgments.append(float(row[columns[-1]]))
        except (TypeError, ValueError):
            raise DatasetError("{}, line {}: {} {!r} is not a number".format(
                path, line, columns[-1], row[columns[-1]])) from None
        items.append(paths)
    return Judged(name or path, mode, items, _check_judgments(judgments, path))


def load_patch(path, size=LOAD_SIZE):
    """An image as uint8 H x W x 3: RGB, its short side resized to ``size`` by Pillow's
    bilinear filter (antialiased), as torchvision's ``Resize(size)`` on a Pillow image.
    8-bit PNGs (all of BAPPS) are decoded by libpng: Pillow's pixels, and with the resize 1.6
    against 2.3 ms a 256 px patch (measured)."""
    from PIL import Image
    try:
        pixels = read_png(path)
        if pixels is not None and pixels.dtype != np.uint8:
            pixels = None  # 16 bits: Pillow's own reduction, as the reference's loader
        with (Image.fromarray(to_rgb(pixels)) if pixels is not None else
              Image.open(path)) as image:
            if image.mode != "RGB":
                image = image.convert("RGB")
            w, h = image.size
            short, long = min(w, h), max(w, h)
            new_long = int(size * long / short)
            new = (size, new_long) if w <= h else (new_long, size)
            return np.asarray(image.resize(new, Image.BILINEAR))
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError("cannot read image {}: {}".format(path, e)) from None
