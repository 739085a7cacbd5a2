# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: data sets of human judgments for ``evaluate`` and ``train``.

    python -m metrics.lpips.datasets bapps --dataroot dataset                 # 2afc val + jnd
    python -m metrics.lpips.datasets bapps --dataroot dataset --subset all    # + 2afc train
    python -m metrics.lpips.datasets synthetic --dataroot synth               # a planted set
    python -m metrics.lpips.datasets info dataset                             # what a set holds

``synthetic`` writes a planted-metric set in the BAPPS layout (:mod:`.evaluation.synthetic`),
to try ``train`` and ``evaluate`` on in minutes; ``info`` describes a data root, a data set
folder or a judgment CSV (:mod:`.evaluation.set_info`).

The reference's archives (2AFC val 1.1 GB, JND 0.2 GB, 2AFC train 5.3 GB) are streamed to
DATAROOT/archives/, resumed where an earlier run stopped, unpacked whole or not at all, and
then removed (``--keep-archives`` keeps them). Without network, put archives fetched
elsewhere into DATAROOT/archives/ and run the same command: it unpacks them.
Exit codes: 0 done, 2 usage error, 3 a damaged or unsafe archive or a destination in the
way, 4 no network, an HTTP error or no disk space, 130 interrupted (a download resumes).
"""
import logging
import os
import shutil
import sys

from .cli.interrupt import interrupted_at_once
from .cli.common import write_output
from .cli.options import add_output_options, add_quiet_option, add_subcommand, make_parser
from .cli.progress import Progress
from .cli.runner import run
from .data.download import UnreachableError, download_resumable, part_path
from .evaluation import bapps_archives as archives
from .evaluation import bapps, set_info, synthetic
from .errors import EnvironmentProblem, UsageProblem

logger = logging.getLogger("metrics.lpips.datasets")


class NoSpaceError(EnvironmentProblem, RuntimeError):
    """Not enough free disk space for an archive and its unpacked files."""


def build_parser():
    p = make_parser("datasets", "Data sets of human judgments for python -m metrics.lpips."
                                "evaluate and train: download BAPPS, make a synthetic one, "
                                "describe one.")
    sub = p.add_subparsers(dest="dataset", metavar="bapps|synthetic|info", required=True)
    b = add_subcommand(sub, "bapps", "download the Berkeley-Adobe Perceptual Patch Similarity "
                                     "judgments")
    b.add_argument("--dataroot", required=True,
                   help="folder to put 2afc/ and jnd/ in (pass the same to evaluate)")
    b.add_argument("--subset", nargs="+", choices=archives.SUBSETS,
                   default=list(archives.DEFAULT_SUBSETS),
                   help="{} or all".format(", ".join("{} ({})".format(a.subset, a.size)
                                                     for a in archives.ARCHIVES.values())))
    b.add_argument("--base-url", default=archives.BASE_URL,
                   help="where the archives are (the reference's bucket); a mirror holding the "
                        "same file names works too")
    b.add_argument("--keep-archives", action="store_true",
                   help="keep the .tar.gz files in DATAROOT/archives/ after unpacking")
    add_quiet_option(b)
    s = add_subcommand(sub, "synthetic", "write a planted-metric 2AFC and JND set in the BAPPS "
                                         "layout (seeded), to try train and evaluate on")
    s.add_argument("--dataroot", required=True,
                   help="the data root to write 2afc/train/synthetic, 2afc/val/synthetic and "
                        "jnd/val/synthetic in")
    s.add_argument("--train", type=int, default=600, help="2AFC training triplets")
    s.add_argument("--val", type=int, default=200, help="2AFC held-out triplets")
    s.add_argument("--jnd", type=int, default=200, help="JND pairs")
    s.add_argument("--size", type=int, default=64, help="patch side in pixels")
    s.add_argument("--seed", type=int, default=0, help="the patches, distortions and observers")
    s.add_argument("--teacher-seed", type=int, default=1, help="the hidden metric's weights")
    s.add_argument("--teacher-fraction", type=float, default=synthetic.TEACHER_FRACTION,
                   help="the share of AlexNet's channels the hidden metric weighs (default "
                        "%(default)s)")
    s.add_argument("--noise", type=float, default=0.5,
                   help="the simulated observers' noise, as a fraction of the median distance "
                        "gap (0 for unanimous judgments)")
    s.add_argument("--images", metavar="DIR",
                   help="photographs to crop patches from (default the bundled samples)")
    s.add_argument("--params-dir", metavar="DIR",
                   help="folder with the .h5 weight files (the teacher uses AlexNet's trunk)")
    add_quiet_option(s)
    i = add_subcommand(sub, "info", "what a data root, data set folder or judgment CSV holds: "
                                    "counts, judgments, image sizes, human agreement")
    i.add_argument("path", help="a data root (with 2afc/ or jnd/), one data set folder, or a CSV")
    add_output_options(i, ("text", "json"))
    add_quiet_option(i)
    return p


def _offline_hint(root, todo, base_url):
    lines = ["Without network, fetch these elsewhere:"]
    lines += ["  {}".format(archives.url(a, base_url)) for a in todo]
    lines.append("and put them in {}/, then run this command again: it unpacks them without "
                 "network. Unpacking by hand as the reference does also works:".format(
                     os.path.join(root, "archives")))
    lines += ["  tar -xf {} -C {}".format(a.name, os.path.normpath(os.path.join(root, a.into)))
              for a in todo]
    return "\n".join(lines)


def _check_space(root, archive, total, have):
    """Room for the rest of the archive and its unpacked files (PNGs barely compress: about
    the archive's size again), before any byte is written."""
    if total is None:
        return
    free = shutil.disk_usage(root).free
    needed = (total - have) + total
    if free < needed:
        raise NoSpaceError("{} needs {:.2f} GB free in {} (the rest of the archive and its "
                           "unpacked files); {:.2f} GB are".format(
                               archive.name, needed / 1e9, root, free / 1e9))


def _download(root, archive, base_url, quiet):
    """Fetches the archive to ``archives.archive_path``, resuming what an earlier run left."""
    path = archives.archive_path(root, archive)
    source = archives.url(archive, base_url)
    bar = []

    def on_start(total, have):
        _check_space(root, archive, total, have)
        size = "{:.1f} MB".format(total / 1e6) if total is not None else "size not stated"
        if have:
            logger.info("resuming %s at %.1f MB of %s", source, have / 1e6, size)
        else:
            logger.info("downloading %s (%s)", source, size)
        bar.append(Progress(total or 0, "bytes", "downloaded", enabled=not quiet, initial=have,
                            in_bytes=True))

    try:
        download_resumable(source, path, on_start=on_start,
                           progress=lambda n: bar[0].update(n))
    finally:
        for b in bar:
            b.close()


def _unpack(root, archive, path, quiet):
    logger.info("unpacking %s into %s", path, archives.destination(root, archive))
    with Progress(os.path.getsize(path), "bytes", "unpacked", enabled=not quiet,
                  in_bytes=True) as bar:
        files = archives.unpack(path, root, archive, progress=bar.update)
    logger.info("%s set complete: %d files in %s", archive.subset, files,
                archives.destination(root, archive))


def fetch_bapps(root, subsets, base_url=archives.BASE_URL, keep_archives=False, quiet=False):
    """Downloads and unpacks the chosen BAPPS subsets under ``root``. Raises
    :class:`~metrics.lpips.evaluation.bapps_archives.NotOursError` (a destination in the way),
    ``ArchiveError`` (a damaged archive, then removed), ``DownloadError`` or
    :class:`NoSpaceError`."""
    todo = []
    for archive in archives.chosen(subsets):
        if archives.is_complete(root, archive):
            logger.info("%s set already complete in %s", archive.subset,
                        archives.destination(root, archive))
            continue
        archives.check_destination(root, archive)
        todo.append(archive)
    for archive in todo:
        path = archives.archive_path(root, archive)
        try:
            _download(root, archive, base_url, quiet)
        except UnreachableError as e:
            raise UnreachableError("cannot reach the server: {}\n{}".format(
                e, _offline_hint(root, todo, base_url))) from None
        try:
            _unpack(root, archive, path, quiet)
        except archives.ArchiveError as e:
            os.remove(path)  # useless as it is; the next run downloads it anew
            raise archives.ArchiveError("{}. The archive was removed; run again to download it "
                                        "anew".format(e)) from None
        if not keep_archives:
            os.remove(path)
    folder = os.path.join(root, "archives")
    if os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)


def _root(args):
    return os.path.abspath(os.path.expanduser(args.dataroot))


def _run(parser, args):
    if args.dataset == "info":
        write_output(set_info.render([set_info.describe(j) for j in set_info.read_sets(args.path)],
                                     args.format), args.outfile)
        return 0
    root = _root(args)
    if args.dataset == "synthetic":
        return _synthetic(args, root)
    os.makedirs(root, exist_ok=True)
    with interrupted_at_once():
        fetch_bapps(root, args.subset, args.base_url, args.keep_archives, args.quiet)


def _synthetic(args, root):
    counts = (args.train, args.val, args.jnd)
    if min(counts) < 0 or not any(counts):
        raise UsageProblem("--train, --val and --jnd must be 0 or more, and one above 0")
    if args.size < 32:  # AlexNet's trunk needs 31 px; its terms need a map after each layer
        raise UsageProblem("--size must be at least 32 (pixels)")
    if args.noise < 0:
        raise UsageProblem("--noise must be 0 or more")
    if not 0 < args.teacher_fraction <= 1:
        raise UsageProblem("--teacher-fraction must be in (0, 1]")
    try:
        sources = synthetic.read_sources(args.images)
        folders = synthetic.make(root, args.train, args.val, args.jnd, args.size, args.seed,
                                 args.teacher_seed, args.noise, sources, args.params_dir,
                                 teacher_fraction=args.teacher_fraction)
    except FileExistsError as e:
        raise UsageProblem(str(e)) from None
    except (OSError, ValueError) as e:
        raise bapps.DatasetError(str(e)) from None
    for folder in folders:
        logger.info("wrote %s", folder)
    return 0


def _interrupted(args):
    """What an interruption says: where the bytes received so far are kept."""
    if args.dataset != "bapps":
        return "interrupted; nothing was left half-written"
    kept = [part_path(archives.archive_path(_root(args), a)) for a in archives.chosen(args.subset)]
    kept = [p for p in kept if os.path.exists(p)]
    return "interrupted{}".format("; the bytes received are kept in {}: run again to resume".format(
        ", ".join(kept)) if kept else "")


def main(argv=None):
    return run(build_parser(), _run, argv, interrupted=_interrupted)


if __name__ == "__main__":
    sys.exit(main())
