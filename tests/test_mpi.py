"""The CLI under MPI: `mpiexec -n 2` gives the single-process output, in input order."""
import json
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import COMMAND_ENV as ENV, command_line, SAMPLES
from test_cli import cli

MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")


def mpi_cli(n, *args):
    command = ([MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-n", str(n)]
               + command_line("compute", *args))
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)


@pytest.fixture
def folder(tmp_path):
    src = iio.imread(os.path.join(SAMPLES, "ref", "coffee.png"))
    for i in range(7):  # an odd count, so the two shares differ in size
        iio.imwrite(str(tmp_path / "{}.png".format(i)), np.roll(src, 9 * i, axis=0))
    return tmp_path


@pytest.mark.heavy
def test_two_processes_equal_one(params_dir, folder):
    single = cli("--all-pairs", folder, "--format", "json", "--batch-size", 4)
    assert single.returncode == 0, single.stderr
    double = mpi_cli(2, "--all-pairs", folder, "--format", "json", "--batch-size", 4)
    assert double.returncode == 0, double.stderr
    one, two = json.loads(single.stdout), json.loads(double.stdout)
    assert [(p["path0"], p["path1"]) for p in two["pairs"]] == [(p["path0"], p["path1"]) for p in one["pairs"]]
    np.testing.assert_allclose([p["lpips"] for p in two["pairs"]], [p["lpips"] for p in one["pairs"]], atol=1e-6)
    assert len(two["pairs"]) == 21
    assert "2 MPI processes" in double.stderr


def test_an_input_error_stops_every_rank(params_dir, folder, tmp_path):
    (folder / "3.png").write_bytes(b"broken")
    out = tmp_path / "scores.txt"
    result = mpi_cli(2, "--all-pairs", folder, "-o", out)
    assert result.returncode == 3, result.stderr
    assert "3.png" in result.stderr
    assert not out.exists()
