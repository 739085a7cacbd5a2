"""What every command shares: option groups defined once, help that shows every default, one
family of errors and one runner that turns them into the documented exit codes."""
import argparse
import importlib
import inspect

import pytest

from metrics.lpips import errors
from metrics.lpips.cli import runner

COMMANDS = ["compute", "convert", "evaluate", "datasets", "features", "analysis", "export",
            "compare", "optimize", "train"]


def _parsers(name):
    """The command's parser and its sub-commands' parsers."""
    parser = importlib.import_module("metrics.lpips." + name).build_parser()
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.values())
    return found


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_every_default(name):
    for parser in _parsers(name):
        text = "".join(parser.format_help().split())  # help wraps long values anywhere
        for action in parser._actions:
            default = action.default
            if (not action.option_strings or default in (None, argparse.SUPPRESS, [])
                    or isinstance(default, bool)):
                continue
            shown = "".join(map(str, default)) if isinstance(default, list) else str(default)
            assert "default:" + shown in text or "default" + shown in text, (
                name, action.option_strings, shown)


@pytest.mark.parametrize("option", ["--params-dir", "--context", "--device-id", "--backend",
                                    "--quiet", "--version"])
def test_shared_options_read_the_same_everywhere(option):
    helps = {}
    for name in COMMANDS:
        for parser in _parsers(name):
            for action in parser._actions:
                if option in action.option_strings:
                    helps.setdefault((action.help, tuple(action.choices or ())), []).append(name)
    assert len(helps) >= 1
    if option != "--params-dir":  # train names what it reads there in its own words
        assert len(helps) == 1, helps


def test_every_error_of_the_package_has_an_exit_code():
    import metrics.lpips
    import pkgutil
    classes = []
    for info in pkgutil.walk_packages(metrics.lpips.__path__, "metrics.lpips."):
        module = importlib.import_module(info.name)
        classes += [c for _, c in inspect.getmembers(module, inspect.isclass)
                    if issubclass(c, Exception) and c.__module__ == info.name]
    assert len(classes) > 15
    outside = [c for c in classes if not issubclass(c, errors.LpipsError)
               and c.__name__ != "UnsafePickleError"]  # pickle's own, wrapped by convert
    assert outside == []
    for c in classes:
        if c is not errors.LpipsError and issubclass(c, errors.LpipsError):
            assert c.exit_code in (2, 3, 4), c


@pytest.mark.parametrize("raised, code", [
    (errors.InputProblem("a bad image"), 3), (errors.EnvironmentProblem("no weights"), 4),
    (OSError(28, "No space left on device"), 4), (KeyboardInterrupt(), 130), (None, 0)])
def test_the_runner_turns_errors_into_exit_codes(raised, code, capsys):
    def body(parser, args):
        if raised is not None:
            raise raised
    assert runner.run(argparse.ArgumentParser(prog="demo"), body, []) == code
    said = capsys.readouterr().err
    if raised is None:
        assert said == ""
    else:  # one line, no traceback
        assert said == "ERROR: {}\n".format(str(raised) if code != 130 else
                                            "interrupted; nothing was written")


def test_a_usage_problem_is_a_usage_error(capsys):
    def body(parser, args):
        raise errors.UsageProblem("--thing must be positive")
    with pytest.raises(SystemExit) as exit_info:
        runner.run(argparse.ArgumentParser(prog="demo"), body, [])
    assert exit_info.value.code == 2
    assert "demo: error: --thing must be positive" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback():
    def body(parser, args):
        raise ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError):
        runner.run(argparse.ArgumentParser(prog="demo"), body, [])
