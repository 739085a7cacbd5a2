# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Image pairs: turning the command line's inputs into an ordered list of path pairs, and
reading a pair of images for the engines."""
import itertools
import os

from .images import IMAGE_EXTENSIONS, read_image, resize_to
from ..errors import InputProblem

PAIR_BY = ("name", "order")


class InputError(InputProblem, ValueError):
    """The inputs name no valid set of image pairs."""


def is_image(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder):
    """The image files directly inside ``folder``, sorted by name (other files, and hidden
    ones such as macOS's ``._x.png`` companions, are ignored)."""
    if not os.path.isdir(folder):
        raise InputError("{} is not a directory".format(folder))
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise InputError("cannot list {}: {}".format(folder, e.strerror or e)) from None
    return sorted(f for f in names if is_image(f) and not f.startswith(".")
                  and os.path.isfile(os.path.join(folder, f)))


def pairs_from_dirs(dir0, dir1, pair_by="name"):
    """Pairs the images of two folders by file name (or, with ``order``, by sorted position)."""
    names0, names1 = list_images(dir0), list_images(dir1)
    if not names0:
        raise InputError("{} holds no images ({})".format(dir0, ", ".join(IMAGE_EXTENSIONS)))
    if pair_by == "order":
        if len(names0) != len(names1):
            raise InputError("{} holds {} images and {} holds {}; --pair-by order needs equal "
                             "counts".format(dir0, len(names0), dir1, len(names1)))
        return [(os.path.join(dir0, a), os.path.join(dir1, b)) for a, b in zip(names0, names1)]
    if pair_by != "name":
        raise ValueError("pair_by must be one of {}, got {!r}".format(", ".join(PAIR_BY), pair_by))
    only0, only1 = sorted(set(names0) - set(names1)), sorted(set(names1) - set(names0))
    if only0 or only1:
        def show(names):
            return ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") or "-"
        raise InputError("the folders do not hold the same file names (use --pair-by order to "
                         "pair by position). Only in {}: {}. Only in {}: {}".format(
                             dir0, show(only0), dir1, show(only1)))
    return [(os.path.join(dir0, n), os.path.join(dir1, n)) for n in names0]


def read_path_list(path):
    """The paths listed in a ``.txt`` file: one a line, blank and ``#`` lines skipped, relative
    paths taken from the list file's folder."""
    if not os.path.isfile(path):
        raise InputError("list file {} not found".format(path))
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not part of a path
            lines = [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise InputError("{} is not UTF-8 text (byte {} of it: {}); save the list as "
                         "UTF-8".format(path, e.start, e.reason)) from None
    except OSError as e:
        raise InputError("cannot read {}: {}".format(path, e.strerror or e)) from None
    if any("\x00" in line for line in lines):  # UTF-16 without its byte-order mark reads so
        raise InputError("{} holds NUL bytes: it is not UTF-8 text (UTF-16?); save the list as "
                         "UTF-8".format(path))
    return [os.path.join(base, line) for line in lines if line and not line.startswith("#")]


def pairs_from_lists(list0, list1):
    """Pairs two aligned path lists line by line."""
    paths0, paths1 = read_path_list(list0), read_path_list(list1)
    if len(paths0) != len(paths1):
        raise InputError("{} lists {} paths and {} lists {}; they must be aligned".format(
            list0, len(paths0), list1, len(paths1)))
    if not paths0:
        raise InputError("{} lists no paths".format(list0))
    return list(zip(paths0, paths1))


def all_pairs(folder):
    """Every unordered pair of distinct images in ``folder``."""
    names = list_images(folder)
    if len(names) < 2:
        raise InputError("{} holds {} image(s); --all-pairs needs at least two".format(
            folder, len(names)))
    paths = [os.path.join(folder, n) for n in names]
    return list(itertools.combinations(paths, 2))


def resolve_pairs(path0, path1, pair_by="name"):
    """Pairs for two command-line paths: two images, two folders, or two ``.txt`` lists."""
    for p in (path0, path1):
        if not os.path.exists(p):
            raise InputError("{} does not exist".format(p))
    if os.path.isdir(path0) and os.path.isdir(path1):
        return pairs_from_dirs(path0, path1, pair_by)
    kinds = [os.path.splitext(p)[1].lower() for p in (path0, path1)]
    if kinds == [".txt", ".txt"]:
        return pairs_from_lists(path0, path1)
    if all(os.path.isfile(p) and is_image(p) for p in (path0, path1)):
        return [(path0, path1)]
    raise InputError("expected two images ({}), two folders or two .txt lists; got {} and "
                     "{}".format(", ".join(IMAGE_EXTENSIONS), path0, path1))


def load_pair(path0, path1, check_size, resize=False):
    """Both images, H x W x 3 (uint8 or uint16 as read; float32 in [0, 1] when resized),
    checked by ``check_size(height, width, path)`` (which raises ``ValueError`` for an image
    too small for what scores it); with ``resize``, the second
    one resized to the first's size when they differ. :class:`InputError` says what is
    wrong. (The engines convert batches of them to the network's input.)"""
    try:
        img0, img1 = read_image(path0), read_image(path1)
    except ValueError as e:
        raise InputError(str(e)) from None
    if img0.shape != img1.shape:
        if not resize:
            raise InputError("{} is {}x{} but {} is {}x{} (pass --resize to resize the second "
                             "image)".format(path0, img0.shape[1], img0.shape[0],
                                             path1, img1.shape[1], img1.shape[0]))
        img1 = resize_to(img1, img0.shape)
    try:
        check_size(img0.shape[0], img0.shape[1], path0)
    except ValueError as e:
        raise InputError(str(e)) from None
    return img0, img1
