# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: how often a distance agrees with people, on BAPPS or your own judgments.

    python -m metrics.lpips.evaluate --dataroot dataset --dataset-mode 2afc \\
        --datasets val/traditional val/cnn --metric lpips --model alex
    python -m metrics.lpips.evaluate --csv judgments.csv --dataset-mode 2afc --metric ssim

The 2AFC score (the fraction of people the metric agrees with) or the JND mAP, per data set,
as the reference's ``test_dataset_model.py`` prints them (Zhang et al. 2018, Sec. 5). Results
go to stdout or ``-o`` (written whole or not at all); progress and diagnostics to stderr.
Exit codes: 0 done, 2 usage error, 3 input error (a data set, an image, a judgment),
4 environment error (weights, compute context, a missing optional package), 130 interrupted.
"""
import logging
import os
import sys

from .cli.common import check_model_version, check_outputs, require_matplotlib, write_output
from .cli.interrupt import ctrl_c_between_items, exit_at_once
from .cli.options import (add_compute_options, add_model_options, add_output_options,
                          add_quiet_option, make_parser, use_context)
from .cli.progress import Progress
from .cli.runner import run
from .cli.scoring import add_method_arguments, method_options
from .data.report import FORMATS
from .errors import UsageProblem
from .evaluation import bapps, baselines
from .evaluation.report import render
from .evaluation.runner import METRICS, Distance, evaluate

logger = logging.getLogger("metrics.lpips.evaluate")


def build_parser():
    p = make_parser("evaluate", "Agreement of a perceptual distance with human judgments: "
                                "BAPPS 2AFC scores and JND mAP (Zhang et al., CVPR 2018), or "
                                "your own judgments.")
    p.add_argument("--dataroot", help="the folder holding 2afc/ and jnd/ (BAPPS layout)")
    p.add_argument("--datasets", nargs="+", metavar="NAME",
                   help="data sets under DATAROOT/<mode>/, e.g. val/traditional val/cnn")
    p.add_argument("--csv", metavar="FILE",
                   help="judgments of your own instead: ref,p0,p1,judge (2afc) or p0,p1,same "
                        "(jnd) with paths relative to the file")
    p.add_argument("--dataset-mode", choices=bapps.MODES, default="2afc",
                   help="2afc or jnd")
    p.add_argument("--metric", choices=METRICS, default="lpips",
                   help="lpips, baseline (the trunk without lin layers), l2, ssim, psnr")
    add_model_options(p)
    add_method_arguments(p)
    p.add_argument("--colorspace", choices=baselines.COLORSPACES, default="Lab",
                   help="for l2, ssim and psnr, as the reference")
    p.add_argument("--batch-size", type=int, default=50, help="items per batch")
    add_compute_options(p)
    add_output_options(p, FORMATS, format_help="text (a table), csv, or json (one object with "
                                               "a results list)")
    p.add_argument("--plot", metavar="DIR",
                   help="also save figures there (2AFC: scores per data set; JND: precision-"
                        "recall curves); needs matplotlib")
    add_quiet_option(p)
    return p


def _check_sources(args):
    if args.csv and (args.dataroot or args.datasets):
        raise UsageProblem("--csv replaces --dataroot and --datasets")
    if not args.csv and not (args.dataroot and args.datasets):
        raise UsageProblem("give --dataroot and --datasets, or --csv")


def _judged_sets(args):
    if args.csv:
        return [bapps.read_csv(args.csv, args.dataset_mode)]
    root = os.path.join(args.dataroot, args.dataset_mode)
    if not os.path.isdir(root):
        raise bapps.DatasetError("{} is not a directory: --dataroot must hold {}/ in the BAPPS "
                                 "layout (see the README on getting BAPPS)".format(
                                     root, args.dataset_mode))
    return [bapps.read_folder(os.path.join(root, name), args.dataset_mode, name=name)
            for name in args.datasets]


def _run(parser, args):
    check_model_version(args.model, args.version)
    if args.batch_size < 1:
        raise UsageProblem("--batch-size must be at least 1")
    given = {k: v for k, v in method_options(args).items() if v != parser.get_default(k)}
    if args.metric not in ("lpips", "baseline") and given:
        raise UsageProblem("--method, --no-channel-norm and --input-norm apply to --metric "
                           "lpips and baseline, not {}".format(args.metric))
    _check_sources(args)
    check_outputs(args.outfile)
    if args.plot:
        require_matplotlib("--plot")
    judged_sets = _judged_sets(args)
    use_context(args)
    with exit_at_once("interrupted; no results were written"):  # an export takes seconds
        distance = Distance(args.metric, args.model, args.version, args.params_dir,
                            args.colorspace, args.batch_size, args.backend,
                            **method_options(args))
    unit = "triplets" if args.dataset_mode == "2afc" else "pairs"
    total = sum(len(j.items) for j in judged_sets)
    results = []
    with ctrl_c_between_items() as stop, Progress(total, unit, "scored",
                                                   enabled=not args.quiet) as progress:
        for judged in judged_sets:
            results.append(evaluate(judged, distance, args.batch_size, progress, stop))
            logger.info("%s: %.2f%% over %d %s", judged.name, 100 * results[-1]["score"],
                        len(judged.items), unit)
    settings = {"metric": distance.name, "dataset_mode": args.dataset_mode}
    if args.plot:
        from .evaluation import plots
        plots.save(results, args.plot)
    write_output(render(results, args.format, settings), args.outfile)


def main(argv=None):
    return run(build_parser(), _run, argv, interrupted="interrupted; no results were written")


if __name__ == "__main__":
    sys.exit(main())
