# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: how often a distance agrees with people, on BAPPS or your own judgments.

    python -m metrics.lpips.evaluate --dataroot dataset --dataset-mode 2afc \\
        --datasets val/traditional val/cnn --metric lpips --model alex
    python -m metrics.lpips.evaluate --csv judgments.csv --dataset-mode 2afc --metric ssim
    python -m metrics.lpips.evaluate --dataroot dataset --datasets val/cnn val/traditional \
        --metric lpips baseline l2 ssim --model alex vgg --weights mine=trained/   # a grid

The 2AFC score (the fraction of people the metric agrees with) or the JND mAP, per data set,
as the reference's ``test_dataset_model.py`` prints them (Zhang et al. 2018, Sec. 5). Several
metrics, models, methods and weights make a grid of configurations, all scored in one
process over patches read once (a table: configurations by data sets, with the human
agreement). Results
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
from .evaluation.runner import METRICS, Distance, evaluate_many
from .evaluation.set_info import human_agreement
from .weights.registry import get_weight_file
from .weights.store import read_comparison

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
    p.add_argument("--metric", choices=METRICS, nargs="+", action="extend", metavar="METRIC",
                   help="one or more of lpips, baseline (the trunk without lin layers), l2, "
                        "ssim, psnr (default lpips)")
    add_model_options(p, many=True)
    add_method_arguments(p, many=True)
    p.add_argument("--weights", action="append", default=[], metavar="LABEL=DIR",
                   help="lpips with these weights too (a train --out folder), for the "
                        "models it holds, its results named LABEL, scored with the method "
                        "its lin layers were trained for; repeatable")
    p.add_argument("--colorspace", choices=baselines.COLORSPACES, default="Lab",
                   help="for l2, ssim and psnr, as the reference")
    p.add_argument("--batch-size", type=int, default=50, help="items per batch")
    add_compute_options(p)
    add_output_options(p, FORMATS, format_help="text (a table), csv, or json (one object with "
                                               "a results list)")
    p.add_argument("--plot", metavar="DIR",
                   help="also save figures there (2AFC: each configuration's score per data "
                        "set, with the human agreement; JND: precision-recall curves); needs "
                        "matplotlib")
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


def _unique(values):
    return list(dict.fromkeys(values))


def _weights(args):
    """[(label, folder)] of --weights, checked."""
    found = []
    for text in args.weights:
        label, sep, folder = text.partition("=")
        if not sep or not label.strip() or not folder:
            raise UsageProblem("--weights takes LABEL=DIR, got {!r}".format(text))
        if not os.path.isdir(folder):
            raise UsageProblem("--weights {}: {} is not a folder".format(label, folder))
        found.append((label.strip(), folder))
    labels = [label for label, _ in found]
    if len(set(labels)) != len(labels):
        raise UsageProblem("--weights labels must differ: {}".format(", ".join(labels)))
    return found


def _configurations(parser, args):
    """The keyword arguments of each :class:`Distance` the options ask for, in order: every
    metric; for lpips and baseline every model and method; for lpips every set of weights."""
    metrics = _unique(args.metric or ["lpips"])
    network = [m for m in metrics if m in ("lpips", "baseline")]
    given = [k for k, v in method_options(args).items()
             if k != "method" and v != parser.get_default(k)] + (["method"] if args.method else [])
    if given and not network:
        raise UsageProblem("--method, --no-channel-norm and --input-norm apply to --metric "
                           "lpips and baseline, not {}".format(", ".join(metrics)))
    weights = _weights(args)
    if weights and "lpips" not in metrics:
        raise UsageProblem("--weights go with --metric lpips")
    models = _unique(args.model or ["alex"])
    for model in models:
        check_model_version(model, args.version)
    held = {label: [m for m in models if os.path.isfile(os.path.join(
        folder, get_weight_file(m, args.version).filename))] for label, folder in weights}
    for label, folder in weights:  # a trained folder holds the models it was trained for
        if not held[label]:
            raise UsageProblem("--weights {}: {} holds no {} weights of version {}".format(
                label, folder, " or ".join(models), args.version))
    options = dict(method_options(args), batch_size=args.batch_size, backend=args.backend)
    configs = []
    for metric in metrics:
        if metric not in network:
            configs.append(dict(metric=metric, colorspace=args.colorspace))
            continue
        for model in models:
            held_here = [(label, folder) for label, folder in weights
                         if metric == "lpips" and model in held[label]]
            # lin layers trained for one comparison are scored with it, whatever --method says
            trained_for = {label: read_comparison(os.path.join(
                folder, get_weight_file(model, args.version).filename))
                for label, folder in held_here}
            for method in _unique(args.method or ["spatial"]):
                sets = [(None, args.params_dir)] + [
                    (label, folder) for label, folder in held_here if not trained_for[label]]
                for label, folder in sets:
                    configs.append(dict(options, metric=metric, model=model, method=method,
                                        version=args.version, params_dir=folder, label=label))
            for label, folder in held_here:
                if trained_for[label]:
                    configs.append(dict(options, metric=metric, model=model,
                                        version=args.version, params_dir=folder, label=label,
                                        **trained_for[label]))
    return configs


def _run(parser, args):
    if args.batch_size < 1:
        raise UsageProblem("--batch-size must be at least 1")
    configs = _configurations(parser, args)
    _check_sources(args)
    check_outputs(args.outfile)
    if args.plot:
        require_matplotlib("--plot")
    judged_sets = _judged_sets(args)
    use_context(args)
    with exit_at_once("interrupted; no results were written"):  # an export takes seconds
        distances = [Distance(**config) for config in configs]
    unit = "triplets" if args.dataset_mode == "2afc" else "pairs"
    total = sum(len(j.items) for j in judged_sets)
    results, human = [], {}
    with ctrl_c_between_items() as stop, Progress(total, unit, "scored",
                                                   enabled=not args.quiet) as progress:
        for judged in judged_sets:
            found = evaluate_many(judged, distances, args.batch_size, progress, stop)
            for result in found:
                logger.info("%s, %s: %.2f%% over %d %s", result["metric"], judged.name,
                            100 * result["score"], len(judged.items), unit)
            results.extend(found)
            if judged.mode == "2afc":
                human[judged.name] = human_agreement(judged.judgments)
    names = [d.name for d in distances]
    settings = {"metric": names[0] if len(names) == 1 else names,
                "dataset_mode": args.dataset_mode}
    if args.plot:
        from .evaluation import plots
        plots.save(results, args.plot, human)
    write_output(render(results, args.format, settings, human), args.outfile)


def main(argv=None):
    return run(build_parser(), _run, argv, interrupted="interrupted; no results were written")


if __name__ == "__main__":
    sys.exit(main())
