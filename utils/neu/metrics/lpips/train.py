# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Command line: training LPIPS' lin layers on 2AFC judgments (the reference's ``train.py``).

    python -m metrics.lpips.train --dataroot DIR --datasets train/traditional train/cnn \\
        --model alex --out OUT [--epochs 5 --epochs-decay 5 --lr 1e-4 --beta1 0.5 \\
        --batch-size 50 --seed 0] [--eval-datasets val/traditional ...] [--resume]
    python -m metrics.lpips.train --csv judged.csv --model vgg --out OUT [--val-fraction 0.1]
        [--recipe reference] [--method sort]

The lin layers start from random values; the trunk stays as pretrained (lin mode), is trained
too (tune) or starts from random values (scratch). The
default recipe (``fast``) trains on per-channel terms computed once per triplet, with a
ranking head that cannot rank backwards, at lr 1e-2; ``--recipe reference`` is the
reference's ``train.py`` (see the README's "Train your own" for what each learns). After
every epoch OUT holds ``<model>_with_LPIPS.h5`` (load it with ``--params-dir OUT`` anywhere),
with validation ``best/<model>_with_LPIPS.h5`` (the best epoch's), ``log.csv`` (loss,
agreement, learning rate and validation 2AFC scores per epoch), the same as NNabla monitor
series (``monitor/*.series.txt``) and the state ``--resume`` continues from, or extends with
more epochs (see :mod:`~metrics.lpips.training.checkpoint`); at the end ``curves.png``.
Under ``mpirun -n K`` (with mpi4py) the processes share every batch and sum their gradients
(NNabla's communicator on GPUs, mpi4py on the CPU): the same steps as one process, up to
floating point; the first writes the checkpoints.
Exit codes: 0 done, 2 usage error, 3 data error, 4 weights, context or output, 130 interrupted.
"""
import importlib.util
import logging
import os
import sys

import nnabla as nn

from .cli.common import configure_logging
from .cli.mpi import nnabla_communicator, world
from .cli.options import (add_compute_options, add_model_options, add_quiet_option, make_parser,
                          use_context)
from .cli.progress import Progress
from .cli.runner import run
from .cli.scoring import add_method_arguments, method_options
from .engines.context import ContextError
from .errors import EnvironmentProblem, UsageProblem
from .evaluation import bapps
from .training import checkpoint, curves, validation
from .training.loop import PLATEAU_EPOCHS, SCHEDULES, best_epoch, train
from .training.trainer import MODES, Trainer
from .trunks import TRUNKS

logger = logging.getLogger("metrics.lpips.train")

HELD_OUT_CSV = "held_out.csv"  # the triplets --val-fraction held out


def build_parser():
    p = make_parser("train", "Train LPIPS' lin layers on 2AFC judgments.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataroot", help="folder holding BAPPS' 2afc/ (see --datasets)")
    source.add_argument("--csv", help="a CSV of ref,p0,p1,judge rows (paths relative to it)")
    p.add_argument("--datasets", nargs="+", default=["train/traditional", "train/cnn",
                                                      "train/mix"],
                   help="2AFC sets under DATAROOT/2afc")
    p.add_argument("--eval-datasets", nargs="*", default=[],
                   help="2AFC sets under DATAROOT/2afc scored after every epoch; the weights "
                        "of the epoch with the best mean score are kept in OUT/best/")
    p.add_argument("--val-fraction", type=float, metavar="F",
                   help="hold out this fraction of the training triplets (drawn with --seed; "
                        "listed in OUT/{}) and score every epoch on them too, as "
                        "--eval-datasets' sets are".format(HELD_OUT_CSV))
    p.add_argument("--lr-schedule", choices=SCHEDULES, default="linear",
                   help="linear (the reference's: --epochs at --lr, then down to 0 over "
                        "--epochs-decay), cosine (the same along half a cosine), plateau "
                        "(--lr halved after every {} epochs without a better validation; "
                        "needs --eval-datasets)".format(PLATEAU_EPOCHS))
    p.add_argument("--patience", type=int, metavar="N",
                   help="with --eval-datasets: stop once N epochs in a row have not beaten "
                        "the best score (default: run every epoch)")
    add_model_options(p, models=[name for name, t in TRUNKS.items() if t.trainable],
                      version=False, params_help="where the pretrained trunk's .h5 file is")
    p.add_argument("--mode", choices=MODES, default="lin",
                   help="lin: the trunk fixed, lin layers trained from random "
                        "values; tune: the trunk trained too, from its pretrained weights; "
                        "scratch: the trunk trained from random values (--recipe reference)")
    add_method_arguments(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int,
                   help="epochs at the full learning rate (default: the recipe's, 20 or 5)")
    p.add_argument("--epochs-decay", type=int,
                   help="epochs more, the learning rate lowered linearly (default: 20 or 5)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="fast",
                   help="fast: precomputed terms, a monotone ranking head, lr 1e-2, "
                        "20 + 20 epochs; reference: the reference's train.py exactly (images "
                        "every step, dropout, its ranking network, lr 1e-4, 5 + 5 epochs)")
    p.add_argument("--head", choices=("reference", "monotone"),
                   help="the ranking head (default: the recipe's)")
    p.add_argument("--lr", type=float, help="Adam's learning rate (default: the recipe's)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam's beta1")
    p.add_argument("--batch-size", type=int, default=50, help="triplets per step")
    p.add_argument("--no-dropout", dest="dropout", action="store_false",
                   help="no dropout before the lin layers")
    p.add_argument("--precompute", action="store_true", default=None,
                   help="compute each triplet's per-channel terms once (ONNX Runtime when "
                        "installed) and train on them: the same result as --no-dropout, "
                        "much faster; implies --no-dropout (the fast recipe's way)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--resume", action="store_true",
                   help="continue the run whose checkpoint is in --out")
    add_compute_options(p, backend=False)
    add_quiet_option(p)
    return p


# What each recipe sets unless an option says otherwise.
RECIPES = {"fast": {"precompute": True, "head": "monotone", "lr": 1e-2, "epochs": 20,
                    "epochs_decay": 20},
           "reference": {"precompute": False, "head": "reference", "lr": 1e-4, "epochs": 5,
                         "epochs_decay": 5}}


def _apply_recipe(args):
    for name, value in RECIPES[args.recipe].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.precompute:
        args.dropout = False


def _settings(args):
    """The training settings a checkpoint records (with the loop's: epochs, batch size,
    seed; and the data's)."""
    settings = {"model": args.model, "mode": args.mode, "lr": args.lr, "beta1": args.beta1,
                "dropout": args.dropout, "head": args.head, "precompute": args.precompute}
    options = method_options(args)
    if options != {"method": "spatial", "channel_norm": True, "input_norm": None}:
        settings.update(options)  # LPIPS' own comparison keeps older checkpoints resumable
    if args.val_fraction is not None:
        settings["val_fraction"] = args.val_fraction
    return settings


def _check_args(args):
    """Every usage error the arguments and --out show, before any data is read."""
    if args.mode != "lin" and args.recipe == "fast":
        raise UsageProblem("--mode {} trains the trunk, which the fast recipe's precomputed "
                           "terms cannot: use --recipe reference".format(args.mode))
    if args.mode != "lin" and args.precompute:
        raise UsageProblem("--precompute needs the trunk fixed (--mode lin)")
    if args.epochs < 0 or args.epochs_decay < 0 or args.epochs + args.epochs_decay < 1:
        raise UsageProblem("--epochs and --epochs-decay must be >= 0, and together >= 1")
    if args.batch_size < 1 or not args.lr > 0 or not 0 <= args.beta1 < 1:
        raise UsageProblem("--batch-size must be >= 1, --lr positive and --beta1 in [0, 1)")
    if args.eval_datasets and not args.dataroot:
        raise UsageProblem("--eval-datasets needs --dataroot (with --csv: --val-fraction)")
    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        raise UsageProblem("--val-fraction must be between 0 and 1, got {:g}".format(
            args.val_fraction))
    validated = bool(args.eval_datasets) or args.val_fraction is not None
    if args.lr_schedule == "plateau" and not validated:
        raise UsageProblem("--lr-schedule plateau needs --eval-datasets or --val-fraction to "
                           "judge the epochs by")
    if args.patience is not None and (args.patience < 1 or not validated):
        raise UsageProblem("--patience takes a number of epochs >= 1, and --eval-datasets or "
                           "--val-fraction to judge them by")
    if os.path.isfile(args.out):
        raise UsageProblem("--out {} is a file".format(args.out))
    if not args.resume and checkpoint.latest(args.out):
        raise UsageProblem("{} holds a training run already: pass --resume to continue it, or "
                           "choose another --out".format(args.out))
    if args.resume:  # what the arguments say is checked now; the data's after reading it
        checkpoint.check_resumable(args.out, dict(
            _settings(args), epochs=args.epochs, epochs_decay=args.epochs_decay,
            batch_size=args.batch_size, seed=args.seed), partial=True)


def _judged(args):
    """The training triplets, joined over the data sets."""
    if args.csv:
        return bapps.read_csv(args.csv, "2afc")
    sets = [bapps.read_folder(os.path.join(args.dataroot, "2afc", name), "2afc", name)
            for name in args.datasets]
    return bapps.Judged("+".join(args.datasets), "2afc",
                        [item for s in sets for item in s.items],
                        [j for s in sets for j in s.judgments])


def _validation_sets(args, held_out):
    """The 2AFC sets every epoch is scored on: --eval-datasets, and the held-out part."""
    sets = [bapps.read_folder(os.path.join(args.dataroot, "2afc", name), "2afc", name)
            for name in args.eval_datasets]
    return sets + ([held_out] if held_out is not None else [])


def _evaluator(args, sets):
    """After each epoch: the 2AFC score of the epoch's weights on each of ``sets``."""
    if not sets:
        return None
    if args.mode == "lin":
        return validation.lin_scorer(sets, args.model, args.params_dir, args.batch_size,
                                     method_options(args))
    return validation.network_scorer(sets, args.model, method_options(args))


def _precompute(args, judged, mpi):
    from .training.loop import precompute_terms
    from .training.precompute import TermMaker
    threads = max(1, (os.cpu_count() or 1) // mpi.local_size)
    make_terms = TermMaker(args.model, args.params_dir, threads=threads, **method_options(args))
    count = -(-len(judged.items) // mpi.size // args.batch_size)
    with Progress(count, "batches", "precomputed",
                  enabled=not args.quiet and mpi.rank == 0) as progress:
        return precompute_terms(judged, make_terms, args.batch_size,
                                on_batch=lambda b, n: progress.update(1), world=mpi)


def _run(parser, args):
    _apply_recipe(args)
    _check_args(args)
    try:
        mpi = world()
    except RuntimeError as e:
        raise EnvironmentProblem(str(e)) from None
    if args.batch_size < mpi.size:
        raise UsageProblem("--batch-size {} is smaller than the {} MPI processes that share each "
                           "batch".format(args.batch_size, mpi.size))
    configure_logging(args.quiet, mpi.rank)
    judged, held_out = _judged(args), None
    if args.val_fraction is not None:
        try:
            judged, held_out = validation.split(judged, args.val_fraction, args.seed)
        except ValueError as e:
            raise UsageProblem("--val-fraction: {}".format(e)) from None
    evaluate = _evaluator(args, _validation_sets(args, held_out))
    use_context(args, mpi.local_rank)
    if mpi.size > 1:
        try:
            mpi.communicator = nnabla_communicator(nn.get_current_context())
        except RuntimeError as e:  # NNabla's own, e.g. without NCCL
            raise ContextError("NNabla's multi-process communicator cannot be made: "
                               "{}".format(str(e).strip().splitlines()[-1])) from None
    trainer = Trainer(args.model, params_dir=args.params_dir, lr=args.lr, beta1=args.beta1,
                      dropout=args.dropout, seed=args.seed, head=args.head, mode=args.mode,
                      **method_options(args))
    os.makedirs(args.out, exist_ok=True)
    if held_out is not None and mpi.rank == 0:
        validation.write_csv(held_out, os.path.join(args.out, HELD_OUT_CSV))
    settings = dict(_settings(args), triplets=len(judged.items), data=judged.name)
    logger.info("training %s (%s mode, %s recipe) on %d triplets (%s), %d + %d epochs",
                args.model, args.mode, args.recipe, len(judged.items), judged.name, args.epochs,
                args.epochs_decay)
    per_epoch = -(-len(judged.items) // args.batch_size)
    found = checkpoint.latest(args.out) if args.resume else None
    done = int(os.path.basename(found).split("_")[1]) if found else 0
    terms = _precompute(args, judged, mpi) if args.precompute else None
    # made after the terms, so that its rate is the training's own
    progress = Progress(per_epoch * (args.epochs + args.epochs_decay), "batches", "trained",
                        enabled=not args.quiet and mpi.rank == 0, initial=per_epoch * done)

    def on_epoch(row):
        logger.info("epoch %d: loss %.4f, agreement %.4f, lr %.2e%s", row["epoch"], row["loss"],
                    row["accuracy"], row["lr"], "".join(
                        ", {} {:.4f}".format(k, v) for k, v in row.items() if k.startswith("2afc")))
    try:
        log = train(trainer, judged, args.out, args.epochs, args.epochs_decay, args.batch_size,
              args.seed, settings, resume=args.resume, evaluate=evaluate, on_epoch=on_epoch,
              on_batch=lambda b, count: progress.update(1), terms=terms, world=mpi,
              patience=args.patience, schedule=args.lr_schedule)
    except OSError as e:
        raise EnvironmentProblem("cannot write the checkpoint: {}".format(e)) from None
    finally:
        progress.close()
    logger.info("trained weights: %s", checkpoint.weights_path(args.out, args.model))
    best = os.path.join(args.out, checkpoint.BEST)
    if evaluate is not None and os.path.isdir(best):
        logger.info("the best epoch's weights: %s", checkpoint.weights_path(best, args.model))
    if mpi.rank == 0:
        _plot(args.out, log)


def _plot(out, log):
    """OUT/curves.png from the run's ``log``, when matplotlib is there to draw it."""
    if importlib.util.find_spec("matplotlib") is None:
        logger.warning("matplotlib is not installed: no %s (log.csv and %s/ hold the same "
                       "numbers)", curves.CURVES, curves.MONITOR)
        return
    path = os.path.join(out, curves.CURVES)
    curves.plot_curves(log, path, best_epoch(log)[0])
    logger.info("training curves: %s", path)


def _interrupted(args):
    return "interrupted; the last finished epoch's checkpoint is in {} (--resume)".format(args.out)


def main(argv=None):
    return run(build_parser(), _run, argv, interrupted=_interrupted)


if __name__ == "__main__":
    sys.exit(main())
