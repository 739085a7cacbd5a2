"""Progress on stderr: a tqdm bar on a terminal, log lines in a pipe, nothing with -q."""
import io
import logging
import os
import pty
import subprocess

from metrics.lpips.cli.progress import Progress
from conftest import COMMAND_ENV as ENV, command_line, run_command, SAMPLES

PAIRS = [os.path.join(SAMPLES, "ref"), os.path.join(SAMPLES, "distorted")]


def compute_on_a_terminal(*args):
    """Runs the compute command with its stderr on a pseudo-terminal: (exit code, what the
    terminal received, stdout)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command_line("compute", *args),
                            stdout=subprocess.PIPE, stderr=follower, env=ENV)
    os.close(follower)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the command closed its end
            break
        if not chunk:
            break
        received += chunk
    out = proc.stdout.read().decode()
    proc.wait(timeout=120)
    os.close(leader)
    return proc.returncode, received.decode(errors="replace"), out


def test_a_terminal_gets_a_bar():
    code, terminal, out = compute_on_a_terminal(*PAIRS)
    assert code == 0 and out.count("\n") == 3
    assert "| 0/3 [" in terminal and "pairs/s]" in terminal  # tqdm's bar
    assert "mean LPIPS over 3 pair(s)" in terminal


def test_quiet_shows_no_bar_on_a_terminal():
    code, terminal, out = compute_on_a_terminal(*PAIRS + ["-q"])
    assert code == 0 and out.count("\n") == 3
    assert "pairs/s" not in terminal and "INFO: " not in terminal


def test_a_pipe_gets_no_bar():
    result = run_command("compute", *PAIRS)
    assert result.returncode == 0
    assert "\r" not in result.stderr and "pairs/s" not in result.stderr
    assert "mean LPIPS over 3 pair(s)" in result.stderr


def test_log_lines_when_not_a_terminal(caplog):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="metrics.lpips.cli.progress"):
        with Progress(3, "triplets", "scored", stream=stream, log_seconds=0) as progress:
            progress.update(1)
            progress.update(1)
            progress.update(1)  # the last: no line, the command sums up itself
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines] == ["1/3 triplets scored", "2/3 triplets scored"]
    assert "triplets/s, about 0:00:" in lines[0]
    assert stream.getvalue() == ""  # the bar is for terminals only


def test_disabled_progress_says_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="metrics.lpips.cli.progress"):
        with Progress(3, enabled=False, stream=io.StringIO(), log_seconds=0) as progress:
            progress.update(2)
    assert caplog.records == [] and progress.done == 2
