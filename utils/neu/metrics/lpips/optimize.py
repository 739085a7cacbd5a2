# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: optimising an image through LPIPS or E-LPIPS, with NNabla's Adam.

    python -m metrics.lpips.optimize match REF -o OUT [--start noise|blur|IMAGE]
    python -m metrics.lpips.optimize average IMG1 IMG2 -o OUT
    python -m metrics.lpips.optimize average IMG --copies 10 --perturb noise|shift -o OUT

``match`` pulls a start image towards REF under the metric (the reference's
``perceptual_loss.py``); ``average`` finds the image whose summed squared distance to the
inputs is least (a barycenter: E-LPIPS' ``ex_pairwise_average.py``, and with ``--copies``
their ``ex_bary10.py``, ten noisy or shifted copies of one image, one drawn per step).
``--metric elpips`` (default for ``average``) uses the E-LPIPS ensemble, a new draw per step;
``lpips`` plain LPIPS. OUT receives the inputs, the start, snapshots
(``step_000100.png``...), ``result.png``, for ``average`` the L2 mean ``l2_mean.png``, the
losses per step (``loss.csv``) and with ``--figure`` a summary picture. Runs on the NNabla
context (``-c``; a GPU makes full-size images practical). Exit codes: 0 done, 2 usage error,
3 unreadable or mismatched images, 4 weights, context or output.
"""
import csv
import io
import logging
import os
import sys
import time

import numpy as np

from .cli.common import check_model_version, check_output_folder, require_matplotlib
from .cli.options import (add_compute_options, add_model_options, add_quiet_option,
                          add_subcommand, make_parser, use_context)
from .cli.runner import run
from .data.atomic import atomic_path
from .data.images import read_image, resize_to, to_unit_range
from .elpips import ELPIPS, Config
from .data.pairs import InputError
from .errors import EnvironmentProblem, UsageProblem
from .lpips import LPIPS
from .optimization import (TOLERANCE, Objective, blurred_start, constant_rate, decaying_rate,
                           noise_start, optimize)
from .trunks import check_size

logger = logging.getLogger(__name__)


def build_parser():
    p = make_parser("optimize", "Optimise an image through LPIPS or E-LPIPS.")
    sub = p.add_subparsers(dest="task", required=True)
    match = add_subcommand(sub, "match", "pull an image towards a reference")
    match.add_argument("images", nargs=1, metavar="REF")
    match.add_argument("--start", default="noise",
                       help="noise, blur (REF blurred), or an image file")
    average = add_subcommand(sub, "average", "the barycenter of images under the metric")
    average.add_argument("images", nargs="+", metavar="IMAGE")
    average.add_argument("--copies", type=int, default=0,
                         help="with one IMAGE: average this many perturbed copies of it")
    average.add_argument("--perturb", choices=("noise", "shift"), default="noise",
                         help="the copies' perturbation: Gaussian noise (--noise-scale) or "
                              "shifts of up to 2 px with reflection")
    average.add_argument("--noise-scale", type=float, default=0.07,
                         help="the noise's standard deviation on [0, 1] values")
    for q in (match, average):
        q.add_argument("-o", "--outdir", required=True, help="folder for the results")
        q.add_argument("--metric", choices=("lpips", "elpips"),
                       default="lpips" if q is match else "elpips",
                       help="plain LPIPS, or the E-LPIPS ensemble (a new draw per step)")
        add_model_options(q, default=None, model_help="trunk (default vgg for lpips, "
                                                      "elpips-vgg for elpips)")
        q.add_argument("--size", type=int, metavar="S",
                       help="resize the images to S x S first (a quick run on the CPU)")
        q.add_argument("--steps", type=int, default=1000 if q is match else 100000,
                       help="Adam steps")
        q.add_argument("--lr", type=float, default=0.01 if q is match else 0.03,
                       help="Adam's step size on [0, 1] values, with E-LPIPS' decay")
        q.add_argument("--constant-lr", action="store_true",
                       help="keep the step size constant (default: E-LPIPS' decay)")
        q.add_argument("--snapshots", type=int, default=10, help="snapshots saved")
        q.add_argument("--figure", action="store_true",
                       help="also save summary.png: inputs, L2 mean, snapshots, loss curve")
        q.add_argument("--seed", type=int, default=0, help="random seed")
        add_compute_options(q)
        add_quiet_option(q)
    return p


def _to_unit(img):
    """H x W x 3 image -> (1, 3, H, W) float32 in [0, 1]."""
    return np.ascontiguousarray(to_unit_range(img).transpose(2, 0, 1)[None], dtype=np.float32)


def _load(path, size):
    img = read_image(path)
    return _to_unit(resize_to(img, (size, size)) if size else img)


def _perturbed(image, count, mode, noise_scale, rng):
    """E-LPIPS' ``ex_bary10.py`` inputs: Gaussian noise, or shifts of -2..2 px per axis with
    the uncovered side reflected."""
    copies = []
    h, w = image.shape[2:]
    for _ in range(count):
        if mode == "noise":
            copies.append(np.clip(image + noise_scale * rng.standard_normal(image.shape), 0, 1))
            continue
        dx, dy = (int(v) for v in rng.integers(-2, 3, 2))
        cut = image[:, :, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        copies.append(np.pad(cut, ((0, 0), (0, 0), (max(0, dy), max(0, -dy)),
                                   (max(0, dx), max(0, -dx))), mode="reflect"))
    return np.concatenate(copies).astype(np.float32)


def _check_usage(args):
    """The usage errors the arguments alone show, before any work."""
    check_model_version(args.model, args.version)
    if args.steps < 1 or (args.size is not None and args.size < 1) or args.lr <= 0:
        raise UsageProblem("--steps and --size must be at least 1 and --lr positive")
    if args.task == "average":
        if args.copies < 0:
            raise UsageProblem("--copies must be positive")
        if args.copies and len(args.images) != 1:
            raise UsageProblem("--copies takes one IMAGE")
        if not args.copies and len(args.images) < 2:
            raise UsageProblem("average needs two or more images, or one with --copies N")
    check_output_folder(args.outdir, "-o")


def _targets(args, rng):
    """The images the loss compares X with: (K, 3, H, W) in [0, 1]."""
    images = [_load(p, args.size) for p in args.images]
    for path, img in zip(args.images[1:], images[1:]):
        if img.shape != images[0].shape:
            raise ValueError("{} is {}x{} but {} is {}x{} (use --size)".format(
                path, img.shape[3], img.shape[2], args.images[0], images[0].shape[3],
                images[0].shape[2]))
    check_size(args.model, images[0].shape[2], images[0].shape[3], args.images[0])
    if args.task == "average" and args.copies:
        return _perturbed(images[0], args.copies, args.perturb, args.noise_scale, rng)
    return np.concatenate(images)


def _start(args, targets, rng):
    shape = (1,) + targets.shape[1:]
    if args.task == "average" or args.start == "noise":
        return noise_start(shape, rng)
    if args.start == "blur":
        return blurred_start(targets[:1])
    start = _load(args.start, args.size)
    if start.shape != shape:
        raise ValueError("--start {} is {}x{}, the reference {}x{}".format(
            args.start, start.shape[3], start.shape[2], shape[3], shape[2]))
    return np.clip(start, TOLERANCE, 1 - TOLERANCE)


def _save(path, x):
    import imageio.v3 as iio
    pixels = np.round(np.clip(x[0].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, pixels, extension=".png")


def _snapshot_steps(steps, count):
    """``count`` - 1 step counts below ``steps``, spread geometrically (early changes are
    fast); the result itself is the last snapshot."""
    if count <= 1 or steps <= 1:
        return set()
    return {int(round(v)) for v in np.geomspace(1, steps, count)[:-1]} - {steps}


def _target_title(args, k):
    """What the figure calls the ``k``-th target: the reference (match), a copy, an input."""
    if args.task == "match":
        return "reference"
    return "copy {}".format(k + 1) if args.copies else "input {}".format(k + 1)


def _figure(path, saved, targets, losses, args):
    from .figures import plt, save_figure
    shown = [(_target_title(args, k), t[None]) for k, t in enumerate(targets[:4])]
    if args.task == "average":
        shown.append(("L2 mean", targets.mean(axis=0, keepdims=True)))
    shown += saved
    cols = len(shown) + 1
    fig, axes = plt.subplots(1, cols, figsize=(2.1 * cols, 2.4))
    for ax, (title, x) in zip(axes, shown):
        ax.imshow(np.clip(x[0].transpose(1, 2, 0), 0, 1))
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    ax = axes[-1]
    ax.plot([s for s, _ in losses], [v for _, v in losses], lw=0.8)
    ax.set_xlabel("step", fontsize=8)
    ax.set_title("loss", fontsize=8)
    ax.tick_params(labelsize=7)
    save_figure(fig, path)


def _metric(args, size):
    net = LPIPS(args.model, params_dir=args.params_dir, version=args.version, engine=args.backend)
    try:  # on the context use_context chose
        net.runs_on_onnxruntime()
    except ValueError as e:
        raise UsageProblem("--backend onnxruntime: {}".format(e)) from None
    return ELPIPS(net, Config.for_image(*size)) if args.metric == "elpips" else net


def _run(parser, args):
    if args.model is None:
        args.model = "elpips-vgg" if args.metric == "elpips" else "vgg"
    _check_usage(args)
    if args.figure:
        require_matplotlib("--figure")
    rng = np.random.default_rng(args.seed)
    try:
        targets = _targets(args, rng)
        start = _start(args, targets, rng)
    except ValueError as e:
        raise InputError(str(e)) from None
    use_context(args)
    metric = _metric(args, targets.shape[2:])
    os.makedirs(args.outdir, exist_ok=True)
    # E-LPIPS' barycenters: squared distances; one random copy a step for --copies.
    objective = Objective(metric, targets, power=2 if args.task == "average" else 1,
                          per_step=1 if args.task == "average" and args.copies else None)
    rate = (constant_rate if args.constant_lr else decaying_rate)(args.lr)
    snapshots, saved, losses = _snapshot_steps(args.steps, args.snapshots), [], []
    started = time.perf_counter()

    def on_step(step, x):
        losses.append((step.step, step.loss))
        if step.step in snapshots:
            _save(os.path.join(args.outdir, "step_{:06d}.png".format(step.step)), x)
            saved.append(("step {}".format(step.step), x.copy()))
            logger.info("step %d: loss %.5f, step size %.2e, %.0f s", step.step, step.loss,
                        step.learning_rate, time.perf_counter() - started)
    try:
        for k, t in enumerate(targets):
            _save(os.path.join(args.outdir, "input_{:02d}.png".format(k)), t[None])
        _save(os.path.join(args.outdir, "start.png"), start)
        if args.task == "average":
            _save(os.path.join(args.outdir, "l2_mean.png"), targets.mean(axis=0, keepdims=True))
        result = optimize(objective, start, args.steps, rate, rng, on_step)
        for name in ("step_{:06d}.png".format(args.steps), "result.png"):
            _save(os.path.join(args.outdir, name), result)
        with atomic_path(os.path.join(args.outdir, "loss.csv")) as tmp:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["step", "loss"])
            writer.writerows(losses)
            with open(tmp, "w") as f:
                f.write(buf.getvalue())
        before, after = objective.value(start), objective.value(result)
        if objective.per_step is not None:  # the steps log one copy's loss: so does the summary
            before, after = (v * objective.per_step / len(targets) for v in (before, after))
        if args.figure:
            _figure(os.path.join(args.outdir, "summary.png"),
                    [("start", start)] + saved[-3:] + [("result", result)], targets, losses,
                    args)
    except OSError as e:
        raise EnvironmentProblem("cannot write the results: {}".format(e)) from None
    print("{} {} with {} ({}): loss {:.5f} -> {:.5f}{} over {} steps, {:.0f} s; results in "
          "{}".format(args.task, "x".join(map(str, targets.shape[2:][::-1])), args.metric,
                      args.model, before, after,
                      " (a copy's, as the steps log it)" if objective.per_step else "",
                      args.steps, time.perf_counter() - started, args.outdir))


def main(argv=None):
    return run(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
