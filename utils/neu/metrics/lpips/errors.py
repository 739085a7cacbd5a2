# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The one family of errors the package raises for what a user can fix: each kind carries the
exit code the commands end with (``cli.runner`` turns any of them into that code and one line
on stderr), and each concrete error also derives from the builtin a caller would expect
(``ValueError`` for a bad value, ``RuntimeError`` for the environment)."""

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_ENVIRONMENT = 0, 2, 3, 4  # 130/143: cli.interrupt


class LpipsError(Exception):
    """Base of the package's errors; ``exit_code`` is the commands' exit code for it."""
    exit_code = 1


class UsageProblem(LpipsError):
    """The command line asks for something that cannot be done (exit 2, before any work).
    ``show_usage``: the commands print their usage line with it (not where the arguments are
    fine and a file in the way is the problem)."""
    exit_code = EXIT_USAGE
    show_usage = True


class InputProblem(LpipsError):
    """An input (image, list, CSV, data set, parameter file given to convert) is missing,
    unreadable or wrong (exit 3)."""
    exit_code = EXIT_INPUT


class EnvironmentProblem(LpipsError):
    """The machine cannot do it: weights, compute context, backend, memory, an output that
    cannot be written (exit 4)."""
    exit_code = EXIT_ENVIRONMENT
