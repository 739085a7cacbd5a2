"""Runs a command (by default `make test`) and prints its wall time and the peak resident memory
of its whole process tree (the command, pytest, and every command the tests start), sampled
from /proc every 0.25 s: what a laptop must have to run the suite.

    python3 benchmarks/bench_suite.py                 # make test, from the repository root
    python3 benchmarks/bench_suite.py make test PYTEST_ARGS=-x

Needs Linux (/proc). A process that lives less than 0.25 s may be missed; the suite's large
allocations live longer.
"""
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children():
    """{parent pid: [child pids]} of every process now."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/{}/stat".format(name)) as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        found.setdefault(parent, []).append(int(name))
    return found


def tree_rss(pid):
    """Bytes resident in ``pid`` and all its descendants."""
    children, total, todo = _children(), 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open("/proc/{}/statm".format(current)) as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo += children.get(current, [])
    return total


def main(argv):
    command = argv or ["make", "test"]
    started = time.perf_counter()
    # Ctrl-C reaches the tests as in a terminal, even when this runs in the background.
    proc = subprocess.Popen(command, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.25)
    print("{}: exit {}, {:.0f} s, peak resident memory of the process tree {:.2f} GiB".format(
        " ".join(command), proc.returncode, time.perf_counter() - started, peak / (1 << 30)),
        file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
