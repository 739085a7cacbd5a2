"""The README and docs/ show commands that run as shown: every ``sh`` and ``python`` block is run
from a copy of the repository root (links to its folders, so that what a block writes lands in a
temporary folder), unless the line before it says why it is not (``<!-- not run by
tests/test_docs.py: ... -->``: the set-up itself, downloads, BAPPS, benchmarks against a PyTorch
environment). A score shown as ``# 0.149140: a.png - b.png`` under a command must be what it
prints. The links between the pages must lead somewhere."""
import glob
import os
import re
import subprocess

import pytest

from conftest import COMMAND_ENV, ROOT

PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
NOT_RUN = "<!-- not run by tests/test_docs.py:"
SHOWN_SCORE = re.compile(r"^# (\d+\.\d{6}: .*)$")


def _blocks():
    """(page, line, language, text, run) of every fenced block of the pages."""
    found = []
    for page in PAGES:
        lines = open(page, encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            if lines[i].startswith("```"):
                end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
                before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
                found.append((os.path.relpath(page, ROOT), i + 1, lines[i][3:].strip(),
                              "\n".join(lines[i + 1:end]), not before.startswith(NOT_RUN)))
                i = end
            i += 1
    return found


BLOCKS = _blocks()
RUN = [b for b in BLOCKS if b[2] in ("sh", "python") and b[4]]


def test_every_page_has_blocks_and_each_block_a_language():
    assert len(RUN) >= 8
    unnamed = [(page, line) for page, line, language, _, _ in BLOCKS if not language]
    assert unnamed == []  # text (a synopsis), sh or python: what is run is said


@pytest.fixture(scope="module")
def root_copy(tmp_path_factory):
    """A folder standing for the repository root: links to its folders and the set-up's
    .venv and .cache."""
    folder = tmp_path_factory.mktemp("root")
    for name in ("utils", "tests", "docs", "scripts", "benchmarks", ".venv", ".cache"):
        if os.path.exists(os.path.join(ROOT, name)):
            os.symlink(os.path.join(ROOT, name), str(folder / name))
    return folder


@pytest.mark.parametrize("page, line, language, text, run", RUN,
                         ids=["{}:{}".format(b[0], b[1]) for b in RUN])
def test_the_block_runs_as_shown(page, line, language, text, run, root_copy):
    env = dict(COMMAND_ENV)
    env.pop("PYTHONPATH")  # each block says how it finds the package
    if language == "sh":
        command = ["bash", "-e", "-o", "pipefail", "-c", text]
    else:  # as a user's script run with the set-up's interpreter, the package on the path
        command = [os.path.join(ROOT, ".venv", "bin", "python"), "-c", text]
        env["PYTHONPATH"] = os.path.join(ROOT, "utils", "neu")
    result = subprocess.run(command, cwd=str(root_copy), env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, (page, line, result.stderr[-3000:])
    for shown in (m.group(1) for m in map(SHOWN_SCORE.match, text.split("\n")) if m):
        assert shown in result.stdout, (page, line, shown, result.stdout)


def test_links_between_pages_lead_somewhere():
    broken = []
    for page in PAGES:
        text = open(page, encoding="utf-8").read()
        for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            if not os.path.exists(os.path.join(os.path.dirname(page), target)):
                broken.append((os.path.relpath(page, ROOT), target))
    assert broken == []


def test_the_readme_stays_short():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().split("\n")) < 200  # the rest lives in docs/


def test_the_quick_start_is_what_ci_runs():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    assert "make test" in readme and "make demo" in readme and "make test" in ci
