# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Getting BAPPS: the reference's archives downloaded, checked and unpacked into the layout
``bapps.read_folder`` reads (``DATAROOT/2afc/{train,val}/...``, ``DATAROOT/jnd/val/...``).

A set is in place only when it is whole: an archive is unpacked into a hidden staging folder
beside its destination and renamed into place in one step, carrying a marker file
(``MARKER``) with what it came from. A folder without the marker was not finished here and
is never taken as complete (a staging folder a killed run left is removed by the next; one
run per DATAROOT at a time). Archive members that would land outside the staging folder
(absolute paths, ``..``, links, devices) are refused before anything is written.

The archives and their layout are those of the reference's ``scripts/download_dataset.sh``
(richzhang/PerceptualSimilarity, BSD-2-Clause; the data is the authors', see their README).
"""
import collections
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from ..errors import InputProblem

BASE_URL = "https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset"
MARKER = ".bapps-complete.json"

# name: the archive's file name; into: where the reference unpacks it, relative to DATAROOT;
# folder: the one top-level folder the archive holds; size: the reference README's figure.
Archive = collections.namedtuple("Archive", "subset name into folder size")
ARCHIVES = collections.OrderedDict((a.subset, a) for a in (
    Archive("val", "twoafc_val.tar.gz", "2afc", "val", "1.1 GB"),
    Archive("jnd", "jnd.tar.gz", ".", "jnd", "0.2 GB"),
    Archive("train", "twoafc_train.tar.gz", "2afc", "train", "5.3 GB"),
))
SUBSETS = tuple(ARCHIVES) + ("all",)
# What evaluation needs, as the reference's download_dataset_valonly.sh.
DEFAULT_SUBSETS = ("val", "jnd")


class ArchiveError(InputProblem, RuntimeError):
    """An archive is damaged, truncated, unsafe, or not laid out as BAPPS."""


class NotOursError(InputProblem, RuntimeError):
    """A destination folder exists but was not completed by this module."""


def chosen(subsets):
    """The archives for the names given on the command line (``all`` is every one)."""
    names = list(ARCHIVES) if "all" in subsets else [s for s in ARCHIVES if s in subsets]
    return [ARCHIVES[name] for name in names]


def destination(root, archive):
    return os.path.normpath(os.path.join(root, archive.into, archive.folder))


def archive_path(root, archive):
    """Where the downloaded archive is kept until it is unpacked (and where one fetched by
    hand can be put)."""
    return os.path.join(root, "archives", archive.name)


def url(archive, base_url=BASE_URL):
    return "{}/{}".format(base_url.rstrip("/"), archive.name)


def is_complete(root, archive):
    return os.path.isfile(os.path.join(destination(root, archive), MARKER))


def check_destination(root, archive):
    """Raises NotOursError when the destination holds something this module did not finish
    (an interrupted ``tar`` of another tool, or files put there by hand)."""
    dest = destination(root, archive)
    if os.path.exists(dest) and not is_complete(root, archive):
        raise NotOursError(
            "{} exists but was not completed by this command (no {} in it): it may be a "
            "half-unpacked archive. Move or remove it to download the {} set here; if you "
            "unpacked it yourself and trust it, evaluate can read it as it is".format(
                dest, MARKER, archive.subset))


def _member_problem(member):
    """Why ``member`` may not be unpacked, or None."""
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (parts and ":" in parts[0]):
        return "an absolute path"
    if ".." in parts:
        return "a path that leaves the folder"
    if member.issym() or member.islnk():
        return "a link"
    if not (member.isfile() or member.isdir()):
        return "a device, pipe or other special file"
    return None


def _extract_member(tar, member, staging):
    if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: the library's own guard as well
        tar.extract(member, staging, set_attrs=False, filter="data")
    else:
        tar.extract(member, staging, set_attrs=False)


def unpack(path, root, archive, progress=None):
    """Unpacks the archive at ``path`` into its place under ``root``, whole or not at all.

    Members are checked and written one by one as the compressed stream is read (no second
    pass over gigabytes); ``progress`` is called with the compressed bytes consumed.

    Raises:
        ArchiveError: a refused member, a damaged or truncated archive, or no ``folder``.
    """
    dest = destination(root, archive)
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    prefix = ".unpacking-{}-".format(archive.subset)
    for name in os.listdir(parent):  # a killed run's half-unpacked staging folder
        if name.startswith(prefix):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    staging = tempfile.mkdtemp(prefix=prefix, dir=parent)
    files = 0
    try:
        with open(path, "rb") as raw:
            try:
                with tarfile.open(fileobj=raw, mode="r|*") as tar:
                    consumed = 0
                    for member in tar:
                        problem = _member_problem(member)
                        if problem is not None:
                            raise ArchiveError("{}: refused member {!r}: {}; nothing was "
                                               "unpacked".format(path, member.name, problem))
                        _extract_member(tar, member, staging)
                        files += member.isfile()
                        if progress is not None:
                            progress(raw.tell() - consumed)
                            consumed = raw.tell()
            except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
                raise ArchiveError("{}: damaged or truncated archive ({}); nothing was "
                                   "unpacked".format(path, e)) from None
        unpacked = os.path.join(staging, archive.folder)
        if not os.path.isdir(unpacked):
            raise ArchiveError("{}: no {}/ folder at the top; is it a BAPPS archive? Nothing "
                               "was unpacked".format(path, archive.folder))
        with open(os.path.join(unpacked, MARKER), "w") as f:
            json.dump({"archive": archive.name, "bytes": os.path.getsize(path), "files": files},
                      f)
        os.rename(unpacked, dest)  # one step: the set appears whole, with its marker
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files
