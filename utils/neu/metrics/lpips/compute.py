# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: LPIPS between two images, two folders, two path lists, or all pairs of a folder.

    python -m metrics.lpips.compute ref.png other.png
    python -m metrics.lpips.compute dirA dirB -o scores.txt --model vgg
    python -m metrics.lpips.compute list0.txt list1.txt --format json
    python -m metrics.lpips.compute --all-pairs dir
    python -m metrics.lpips.compute dirA dirB --metric psnr

Scores go to stdout or ``--outfile`` (written whole or not at all); progress and diagnostics
go to stderr. Under ``mpirun -n K`` (with mpi4py) each process scores every K-th pair and the
first writes all scores, in input order. Exit codes: 0 done, 2 usage error, 3 input error
(a file, an image, a pairing), 4 environment error (weights, compute context), 130 interrupted.
"""
import argparse
import functools
import logging
import os
import sys

from .cli import journal
from .cli.common import (check_model_version, check_output_folder, check_output_path,
                         configure_logging, memory_budget, write_output)
from .cli.interrupt import ctrl_c_between_items, exit_at_once
from .cli.mpi import world
from .cli.options import (add_compute_options, add_memory_option, add_model_options,
                          add_output_options, add_quiet_option, make_parser, use_context)
from .cli.progress import Progress
from .cli.runner import run
from .cli.scoring import (add_ensemble_arguments, add_method_arguments,
                          check_ensemble_arguments, ensemble_options, method_options,
                          score_pairs)
from . import classic
from .data.atomic import written_in_place
from .data.pairs import PAIR_BY, all_pairs, is_image, resolve_pairs
from .data.report import (FORMATS, csv_header, csv_summary, line, render, render_original,
                          summarize)
from .engines import Scorer
from .engines.ensemble_scorer import EnsembleScorer
from .errors import EXIT_INPUT, EnvironmentProblem, LpipsError, UsageProblem
from .evaluation.baselines import COLORSPACES

logger = logging.getLogger("metrics.lpips.compute")


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a positive number, got {!r}".format(text))
    return value


def build_parser():
    p = make_parser("compute", "LPIPS perceptual distance (Zhang et al., CVPR 2018): 0 for "
                               "identical images, larger for more different ones.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="two images, two folders (paired by file name), or two .txt path lists")
    p.add_argument("--all-pairs", metavar="DIR",
                   help="score every pair of images within one folder, with mean and standard error")
    p.add_argument("--metric", choices=("lpips",) + classic.METRICS, default="lpips",
                   help="lpips, or a classic metric as evaluate computes it: l2 (the distance), "
                        "ssim (the similarity) or psnr (in dB)")
    p.add_argument("--colorspace", choices=COLORSPACES,
                   help="l2, ssim, psnr: the colour space they compare in (default RGB; "
                        "evaluate's default and the reference's is Lab)")
    add_model_options(p, lin=True)
    add_method_arguments(p)
    add_ensemble_arguments(p)
    add_compute_options(p, winograd=True)
    p.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass")
    add_memory_option(p)
    add_output_options(p, FORMATS + ("original",), outfile_help="write the scores here instead "
                       "of stdout (whole at the end; meanwhile a journal FILE.partial)",
                       format_help="text (score: path0 - path1), csv or json (full precision "
                       "and a summary), or original (the original NNabla module's output: 3 "
                       "decimals, 'LPIPS: x' for one pair, an LPIPS header line in -o files)")
    p.add_argument("--pair-by", choices=PAIR_BY, default="name",
                   help="pair two folders' images by file name or by sorted position")
    p.add_argument("--resize", action="store_true",
                   help="resize the second image of a pair to the first's size when they differ")
    p.add_argument("--skip-bad", action="store_true",
                   help="report and skip a pair that cannot be scored instead of stopping")
    p.add_argument("--heatmap-dir", metavar="DIR",
                   help="also save each pair's spatial LPIPS map there as a colour PNG, with a "
                        "labelled colour bar")
    p.add_argument("--heatmap-scale", type=_positive_float, metavar="VALUE",
                   help="colour every map from 0 to VALUE, so that maps compare by eye "
                        "(default: each map to its own maximum)")
    p.add_argument("--heatmap-overlay", action="store_true",
                   help="draw each map over the pair's first image")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the journal next to -o "
                        "(<outfile>.partial): only the pairs not scored yet are scored")
    add_quiet_option(p)
    return p


def _make_scorer(args, mpi):
    """(the scorer, None), or (None, the error) when it cannot be made: the error is returned
    rather than raised so that every MPI rank reaches the gathers before the run stops."""
    if args.metric in classic.METRICS:
        return classic.ClassicScorer(args.metric, args.colorspace, args.batch_size), None
    try:
        # Under MPI each local rank takes its own GPU and its share of the CPU cores.
        use_context(args, mpi.local_rank)
        scorer = Scorer(model=args.model, version=args.version, params_dir=args.params_dir,
                        lpips=args.lin,
                        batch_size=args.batch_size, spatial=bool(args.heatmap_dir),
                        backend=args.backend, winograd=args.winograd,
                        max_memory=args.max_memory,
                        threads=max(1, (os.cpu_count() or 1) // mpi.local_size),
                        **method_options(args))
        if args.ensemble:
            scorer = EnsembleScorer(
                scorer, samples=None if args.ensemble == "auto" else args.ensemble,
                abs_tol=args.abs_tol, rel_tol=args.rel_tol, max_samples=args.max_samples,
                draws_per_pass=args.draws_per_pass, seed=args.seed)
        return scorer, None
    except LpipsError as e:
        return None, e


def _score_share(args, pairs, mpi, scorer, stop_if_interrupted, done=(), on_batch=None):
    """Scores this rank's share, less the pairs ``done`` already. Returns (exit code,
    message, scores, skipped); ``scorer`` is :func:`_make_scorer`'s pair."""
    scorer, failure = scorer
    if failure is not None:
        return failure.exit_code, str(failure), {}, []
    share = [(i, pair) for i, pair in mpi.share(pairs) if i not in done]
    show = not args.quiet and mpi.rank == 0
    try:
        with Progress(len(share), "pairs", "scored", enabled=show) as progress:
            scores, skipped = score_pairs(scorer, share, resize=args.resize,
                                          skip_bad=args.skip_bad, heatmap_dir=args.heatmap_dir,
                                          heatmap_scale=args.heatmap_scale,
                                          heatmap_overlay=args.heatmap_overlay,
                                          progress=progress, stop=stop_if_interrupted,
                                          on_batch=on_batch)
    except LpipsError as e:  # an input or memory error: every rank still reaches the gather
        return e.exit_code, str(e), {}, []
    return 0, None, scores, skipped


class _InOrder(object):
    """Prints each pair's line once every pair before it is done, so that a pipe reading
    stdout sees the scores as they come, in input order."""

    def __init__(self, line):
        self._line, self._next, self._waiting = line, 0, {}

    def __call__(self, scored, skipped):
        for i, p0, p1, s in scored:
            self._waiting[i] = self._line(p0, p1, s)
        for item in skipped:
            self._waiting[item[0]] = ""
        shown = []
        while self._next in self._waiting:
            shown.append(self._waiting.pop(self._next))
            self._next += 1
        if shown:
            write_output("".join(shown))


def _streaming(args, mpi):
    """The line printer when scores go to stdout as they come (text and CSV, one process)."""
    if args.outfile or mpi.size > 1 or args.format not in ("text", "csv"):
        return None
    if args.format == "csv":
        write_output(csv_header(bool(args.ensemble), args.metric))
    return _InOrder(functools.partial(line, args.format))


def _journal(args, pairs, mpi):
    """(journal or None, scores done, skipped done): the run's journal next to ``-o``, and
    with ``--resume`` what an interrupted run's journal holds."""
    if not args.outfile or written_in_place(args.outfile):
        return None, {}, []  # (--resume without -o is a usage error found before)
    settings = journal.settings_of(args, pairs)
    done, skipped = {}, []
    # Every rank looks before any makes its own (the gather is the barrier). A journal with no
    # result (a run stopped before its first batch) is no run to continue: it is deleted.
    problem, kept = None, []
    if mpi.rank == 0:  # one process deletes; every one reaches the gather, then the same error
        try:
            kept = journal.discard_scoreless(args.outfile)
        except journal.JournalError as e:
            problem = str(e)
    gathered = mpi.allgather((problem, kept))
    if gathered[0][0]:
        raise journal.JournalError(gathered[0][0])
    found = sorted(set(path for _, paths in gathered for path in paths))
    if found and not args.resume:
        journal.read(args.outfile, settings)  # one of other inputs or settings says so
        raise journal.JournalError("{} holds the scores of an interrupted run of these inputs: "
                                   "pass --resume to continue it, or delete it to start "
                                   "again".format(found[0]))
    if args.resume:
        try:
            done, skipped = journal.read(args.outfile, settings)
        except OSError as e:
            raise UsageProblem(str(e)) from None
        logger.info("resuming: %d of %d pair(s) scored before, %d skipped", len(done), len(pairs),
                    len(skipped))
    return journal.Journal(args.outfile, settings, mpi.rank, mpi.size), done, skipped


def _check_outputs_spare_inputs(args, pairs):
    """Usage error, before any work, when ``-o`` is one of the inputs (an image, a path list)
    or the heat-map folder is a folder of input images: the run would destroy what it reads,
    or mix its maps with the images (a later run would pair them)."""
    real = os.path.realpath
    images = {real(p) for pair in pairs for p in pair}
    lists = {real(p) for p in args.paths if os.path.isfile(p)}
    if args.outfile and real(args.outfile) in images | lists:
        raise UsageProblem("-o {} is one of the inputs; it would be overwritten".format(
            args.outfile))
    if args.heatmap_dir and real(args.heatmap_dir) in {os.path.dirname(p) for p in images}:
        raise UsageProblem("--heatmap-dir {} holds input images; its maps would mix with "
                           "them".format(args.heatmap_dir))


def _check_paths(args):
    if args.all_pairs and args.paths:
        raise UsageProblem("--all-pairs takes one folder and no other paths")
    if not args.all_pairs and len(args.paths) != 2:
        raise UsageProblem("give two paths (images, folders or .txt lists), or --all-pairs DIR")


def _pairs_from_args(args):
    if args.all_pairs:
        return all_pairs(args.all_pairs)
    return resolve_pairs(args.paths[0], args.paths[1], args.pair_by)


def _check_metric(parser, args):
    """A classic metric takes none of the network's options; --colorspace only goes with one."""
    if args.metric == "lpips":
        if args.colorspace:
            raise UsageProblem("--colorspace goes with --metric l2, ssim or psnr")
        return
    network = ["--" + name.replace("_", "-") for name in ("model", "version", "params_dir",
                                                          "method", "input_norm", "ensemble",
                                                          "heatmap_dir")
               if getattr(args, name) != parser.get_default(name)]
    network += [flag for flag, on in (("--no-lin", not args.lin),
                                      ("--no-channel-norm", not args.channel_norm),
                                      ("--format original", args.format == "original")) if on]
    if network:
        raise UsageProblem("{} go(es) with --metric lpips, not {}".format(
            ", ".join(network), args.metric))
    args.colorspace = args.colorspace or "RGB"


def _check_usage(parser, args):
    """Every usage error that the arguments alone show, before any work."""
    _check_metric(parser, args)
    check_model_version(args.model, args.version)
    _check_paths(args)
    if args.batch_size < 1:
        raise UsageProblem("--batch-size must be at least 1")
    args.max_memory = memory_budget(args, ensemble=bool(args.ensemble))  # bytes from here on
    check_ensemble_arguments(args)
    if args.ensemble and args.heatmap_dir:
        raise UsageProblem("--heatmap-dir and --ensemble do not go together: an ensemble's "
                           "score is a mean over transformed images, with no map of the originals")
    if args.heatmap_dir:
        check_output_folder(args.heatmap_dir, "--heatmap-dir")
    elif args.heatmap_scale or args.heatmap_overlay:
        raise UsageProblem("--heatmap-scale and --heatmap-overlay go with --heatmap-dir")
    if args.resume and (not args.outfile or written_in_place(args.outfile)):
        raise UsageProblem("--resume needs -o FILE: the journal lives next to the output file")
    if args.outfile:  # before any work: a wrong -o would otherwise be found after the scoring
        try:
            check_output_path(args.outfile)
        except EnvironmentProblem as e:
            raise UsageProblem(str(e)) from None


def _run(parser, args):
    _check_usage(parser, args)
    try:
        mpi = world()
    except RuntimeError as e:
        raise EnvironmentProblem(str(e)) from None
    configure_logging(args.quiet, mpi.rank)  # rank 0 speaks for the run
    pairs = _pairs_from_args(args)
    _check_outputs_spare_inputs(args, pairs)
    logger.info("%s, %d pair(s)%s", _described(args), len(pairs),
                ", {} MPI processes".format(mpi.size) if mpi.size > 1 else "")
    with exit_at_once("interrupted; no score file was written"):  # an export takes seconds
        scorer = _make_scorer(args, mpi)
    log, done, done_skipped = _journal(args, pairs, mpi)
    stream = _streaming(args, mpi)

    def on_batch(scored, skipped):
        if log is not None:
            log.record(scored, skipped)
        if stream is not None:
            stream(scored, skipped)

    try:
        with ctrl_c_between_items() as stop_if_interrupted:
            results = mpi.allgather(_score_share(args, pairs, mpi, scorer,
                                                 stop_if_interrupted,
                                                 set(done) | {k[0] for k in done_skipped},
                                                 on_batch))
    finally:
        if log is not None:
            log.close()
    failed = [r for r in results if r[0]]
    if failed:
        recorded = sum(mpi.allgather(log.recorded if log is not None else 0))
        if log is not None and mpi.rank == 0 and not done and not done_skipped and not recorded:
            log.remove()  # no result to continue from: a rerun starts afresh
        if mpi.rank == 0:
            logger.error("%s", failed[0][1])
        return failed[0][0]
    scores = dict(done)
    scores.update((i, s) for r in results for i, s in r[2].items())
    skipped = sorted(set(done_skipped) | {item for r in results for item in r[3]})
    if mpi.rank > 0:
        return 0
    rows = [(p0, p1, scores[i]) for i, (p0, p1) in enumerate(pairs) if i in scores]
    if not rows:
        logger.error("all %d pair(s) were skipped (reasons above); no score file was "
                     "written", len(skipped))
        return EXIT_INPUT
    if args.format == "original":
        single = not args.all_pairs and all(os.path.isfile(p) and is_image(p)
                                            for p in args.paths)
        shown, saved = render_original(rows, args.model, single, args.outfile)
        if saved is not None:
            write_output(saved, args.outfile)
        write_output(shown)
    elif stream is not None:  # the scores are out already; CSV's summary line ends it
        if args.format == "csv":
            write_output(csv_summary([s for _, _, s in rows]))
    else:
        write_output(render(rows, args.format, _settings(args), [item[1:] for item in skipped],
                            args.metric), args.outfile)
    if log is not None:
        log.remove()  # the output is whole: the journal has served
    _log_summary([s for _, _, s in rows], skipped, _described(args, short=True))
    return 0


def _settings(args):
    """What the scores are, for JSON outputs."""
    if args.metric != "lpips":
        return {"metric": args.metric, "colorspace": args.colorspace}
    return dict({"metric": "lpips", "model": args.model, "version": args.version,
                 "lin": args.lin}, **method_options(args), **ensemble_options(args))


def _described(args, short=False):
    """What is computed, for the log: ``LPIPS`` (``model alex, version 0.1``) or the classic
    metric's name."""
    if args.metric != "lpips":
        name = classic.DESCRIPTIONS[args.metric]
        return name if short else "{} in {}".format(name, args.colorspace)
    name = "LPIPS" if args.lin else "LPIPS without lin layers"
    return name if short else "{}, model {}, version {}".format(name, args.model, args.version)


def _log_summary(scores, skipped, name="LPIPS"):
    """The mean and its standard error over pairs; for one pair its score (and an estimate's
    own precision), since one pair has no spread to speak of."""
    summary = summarize(scores)
    rest = "; {} skipped".format(len(skipped)) if skipped else ""
    if summary["count"] == 1:
        score = scores[0]
        precision = (" +- {:.6f} (95%, {} draws)".format(score.half_width, score.count)
                     if hasattr(score, "half_width") else "")
        logger.info("%s of the one pair: %.6f%s%s", name, float(score), precision, rest)
    elif summary["count"]:
        logger.info("mean %s over %d pair(s): %.6f (standard error %.6f)%s", name,
                    summary["count"], summary["mean"], summary["stderr"], rest)


def main(argv=None):
    return run(build_parser(), _run, argv, interrupted="interrupted; no score file was written")


if __name__ == "__main__":
    sys.exit(main())
