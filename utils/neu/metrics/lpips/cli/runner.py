# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The one place where a command's errors become exit codes and one-line messages.

A command is a parser and a body ``body(parser, args)`` that returns an exit code (None for
0) or raises: :class:`~metrics.lpips.errors.UsageProblem` is a usage error (the usage line,
exit 2), any other :class:`~metrics.lpips.errors.LpipsError` its own ``exit_code``, an
``OSError`` (a file the run writes, the disk) 4, Ctrl-C 130 and SIGTERM 143. Anything else is a
bug and keeps its traceback."""
import logging

from ..errors import EXIT_ENVIRONMENT, EXIT_OK, LpipsError, UsageProblem
from .common import configure_logging
from .interrupt import exit_code

logger = logging.getLogger(__name__)


def run(parser, body, argv=None, interrupted="interrupted; nothing was written"):
    """Parses ``argv`` with ``parser``, runs ``body(parser, args)`` and returns its exit code;
    ``interrupted`` is what Ctrl-C or SIGTERM logs (or a function of the arguments that
    says it)."""
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "quiet", False))
    try:
        code = body(parser, args)
    except UsageProblem as e:
        if e.show_usage:
            parser.error(str(e))  # exits 2
        logger.error("%s", e)
        return e.exit_code
    except LpipsError as e:
        logger.error("%s", e)
        return e.exit_code
    except OSError as e:
        logger.error("%s", e)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt as e:
        logger.error("%s", interrupted(args) if callable(interrupted) else interrupted)
        return exit_code(e)
    return EXIT_OK if code is None else code
