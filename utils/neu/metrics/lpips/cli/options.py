# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The options the commands share, each defined once: the network (model, version, weights),
where it runs (context, device, backend), the output (file, format) and quietness. Every
command's parser comes from :func:`make_parser`, whose help shows every default."""
import argparse

from ..engines.context import CONTEXTS
from ..engines.select import BACKENDS
from ..trunks import TRUNKS
from ..weights import registry


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's lines and adds "(default: X)" to every option that has a
    default its help does not already state."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("(default" in text or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool) or default == []):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL,
                                                               argparse.ZERO_OR_MORE):
            return text
        if isinstance(default, (list, tuple)):
            default = " ".join(str(v) for v in default)
        return "{}{}(default: {})".format(text, " " if text else "",
                                          str(default).replace("%", "%%"))


def make_parser(command, description):
    """The parser of ``python -m metrics.lpips.<command>``."""
    return argparse.ArgumentParser(prog="python -m metrics.lpips." + command,
                                   description=description, formatter_class=_HelpFormatter)


def add_subcommand(subparsers, name, help):
    """A sub-command's parser, whose help shows its defaults too."""
    return subparsers.add_parser(name, help=help, description=help,
                                 formatter_class=_HelpFormatter)


def add_model_options(parser, models=None, default="alex", version=True, lin=False,
                      model_help="feature trunk",
                      params_help="folder with the .h5 weight files (default "
                                  "$NNABLA_LPIPS_PARAMS_DIR, then <NNabla data home>/lpips)",
                      many=False):
    """``--model`` (one of ``models``, default all trunks; with ``many`` one or more, a list
    that is None when not given), ``--version`` (unless not ``version``), ``--params-dir``
    and with ``lin`` ``--no-lin``."""
    if many:
        parser.add_argument("--model", choices=list(models or TRUNKS), nargs="+",
                            action="extend", metavar="MODEL",
                            help="{}, one or more: {} (default {})".format(
                                model_help, ", ".join(models or TRUNKS), default))
    else:
        parser.add_argument("--model", choices=list(models or TRUNKS), default=default,
                            help=model_help)
    if version:
        parser.add_argument("--version", choices=list(registry.VERSIONS), default="0.1",
                            help="LPIPS version (0.0 reproduces the original release; elpips: "
                                 "E-LPIPS' lin layers, VGG only)")
    parser.add_argument("--params-dir", metavar="DIR", help=params_help)
    if lin:
        parser.add_argument("--no-lin", dest="lin", action="store_false",
                            help="the uncalibrated baseline: a plain sum over channels instead "
                                 "of the lin layers")


def add_compute_options(parser, backend=True, winograd=False):
    """``-c/--context``, ``-d/--device-id``, and with ``backend`` ``--backend`` (with
    ``winograd`` also ``--no-winograd``)."""
    parser.add_argument("-c", "--context", choices=CONTEXTS, default="auto",
                        help="compute on: auto (cuDNN when usable, else the CPU), cpu, cudnn")
    parser.add_argument("-d", "--device-id", type=int, default=0,
                        help="GPU device id (under MPI, each process on a node adds its local "
                             "rank)")
    if backend:
        parser.add_argument("--backend", choices=BACKENDS, default="auto",
                            help="who runs the network: auto (ONNX Runtime on the CPU when "
                                 "installed, else NNabla), nnabla, onnxruntime")
    if winograd:
        parser.add_argument("--no-winograd", dest="winograd", action="store_const", const=False,
                            help="onnxruntime backend: direct convolutions only (the default uses "
                                 "them for images over 256x256 px, VGG 512x512; Winograd's "
                                 "below; scores differ by ~1e-6)")


def use_context(args, local_rank=0):
    """Makes the context ``-c``/``-d`` ask for NNabla's default (the commands own the process;
    library code never does this). Under MPI each local rank takes its own GPU."""
    import nnabla as nn
    from ..engines.context import choose_context
    nn.set_default_context(choose_context(args.context, args.device_id + local_rank))


def add_memory_option(parser):
    """``--max-memory GIB`` (read by :func:`~metrics.lpips.cli.common.memory_budget`)."""
    parser.add_argument("--max-memory", type=float, metavar="GIB",
                        help="memory the run may take, in GiB (default a third of the memory "
                             "available); larger pairs are scored tile by tile, with the same "
                             "result")


def add_output_options(parser, formats=None, outfile_help="write the results here instead of "
                       "stdout (whole, or not at all)", format_help="how the results are written",
                       required=False):
    """``-o/--outfile`` and, with ``formats``, ``--format`` (the first is the default)."""
    parser.add_argument("-o", "--outfile", metavar="FILE", required=required, help=outfile_help)
    if formats:
        parser.add_argument("--format", choices=list(formats), default=formats[0],
                            help=format_help)


def add_quiet_option(parser):
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="only warnings and errors on stderr (no progress)")
