# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The export cache: where exported graphs are kept, how entries are named, made, expired and
made again.

An entry is ``<model>-<kind>-<code digest>-<parameters digest>.onnx``. The code digest covers
the code that builds the graphs (comments and docstrings excluded, so editing them keeps every
user's cache); the parameters digest covers the weights and the settings that reach the graph.
A changed exporter, rewrite, weight file or option never meets a stale entry, so one cache
serves every weights folder.
"""
import ast
import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time

from ...weights.registry import is_lin_parameter
from ...weights.store import default_params_dir
from ..tuning import tuning_for
from . import export, pairs, weights_file

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "NNABLA_LPIPS_CACHE_DIR"
# A partial export untouched this long was left by a killed process (an export takes seconds).
ABANDONED_SECONDS = 3600


def _writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def cache_folder():
    """Where exported graphs are cached: ``$NNABLA_LPIPS_CACHE_DIR``, else
    ``<NNabla data home>/lpips/onnx``, else (neither writable) a temporary folder, with a
    warning. Never the weights folder a user names, which may be read-only or shared."""
    for folder in (os.environ.get(CACHE_DIR_ENV), os.path.join(default_params_dir(), "onnx")):
        if folder and _writable_folder(folder):
            return os.path.abspath(folder)
        if folder:
            logger.warning("cannot write the ONNX export cache in %s", folder)
    folder = os.path.join(tempfile.gettempdir(), "lpips-onnx-cache-{}".format(os.getuid()))
    logger.warning("caching exported graphs in %s (set $%s to keep them)", folder,
                   CACHE_DIR_ENV)
    return folder


def _without_docstrings(tree):
    """``tree`` without its bare string statements (docstrings and the like: no code)."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                kept = [s for s in body if not (isinstance(s, ast.Expr)
                                                and isinstance(s.value, ast.Constant)
                                                and isinstance(s.value.value, str))]
                setattr(node, field, kept or [ast.Pass()])
    return tree


@functools.lru_cache(maxsize=None)
def source_digest(path):
    """A digest of the Python code in ``path`` as the interpreter reads it: its syntax tree
    without comments, docstrings, line numbers or layout."""
    with open(path, "rb") as f:
        tree = _without_docstrings(ast.parse(f.read(), path))
    return hashlib.sha256(ast.dump(tree).encode("utf-8")).digest()


def _code_digest(kind):
    """A short digest of the code that builds a ``kind`` entry: the metric's modules the graphs
    are built from, the exporter, its rewrites and weights file, the joined pairs graph, and
    the Winograd rewrite for the ``-winograd`` kinds. Entries made by other code are never
    used again."""
    from ... import distances, lpips, trunks
    from . import graph, rewrites, winograd
    modules = [lpips, trunks, distances, graph, rewrites, export, pairs, weights_file]
    h = hashlib.sha256(kind.encode("utf-8"))
    for module in modules + ([winograd] if "winograd" in kind else []):
        h.update(source_digest(module.__file__))
    return h.hexdigest()[:8]


def parameter_hashes(net):
    """Each parameter of ``net``'s digest (name -> bytes), for :func:`cache_path`: an engine's
    graphs are named from one pass over VGG's 59 MB of weights instead of one a graph (0.26 s
    each time, measured)."""
    return {name: hashlib.sha256(value.d.tobytes()).digest()
            for name, value in net.parameters().items()}


def trunk_digest(net, hashes=None):
    """A short digest of ``net``'s trunk parameters alone: two networks with equal ones compute
    the same features from the same scaled input (lin layers trained on a fixed trunk keep
    it)."""
    return _params_digest(net, "weights", hashes)


def _params_digest(net, kind, hashes=None):
    """A short digest of the parameters and options a ``kind`` entry of ``net`` bakes in (the
    tuning table's export settings included). The ``weights`` file holds the trunk's
    parameters alone, so the graphs of every version and option share it."""
    hashes = hashes or parameter_hashes(net)
    if kind == "weights":
        h = hashlib.sha256("{} weights".format(net.model).encode("utf-8"))
        wanted = lambda name: not is_lin_parameter(name)  # noqa: E731
    else:
        has_trunk, has_head = not kind.startswith("head"), not kind.startswith("trunk")
        tuning = tuning_for(net.model)
        exported = ((tuning.export_size, net.trunk.ceil_mode_pools, tuning.winograd_tiles)
                    if has_trunk else None)
        head = (net.lpips, net.method, net.channel_norm) if has_head else None
        h = hashlib.sha256("{} {} input={} head={} export={}".format(
            net.model, kind, has_trunk and net.input_norm, head, exported).encode("utf-8"))
        wanted = lambda name: has_head if is_lin_parameter(name) else has_trunk  # noqa: E731
    for name in sorted(hashes):
        if wanted(name):
            h.update(name.encode("utf-8"))
            h.update(hashes[name])
    return h.hexdigest()[:12]


def cache_path(net, kind, folder=None, hashes=None):
    """Where a cache entry is: ``<folder>/<model>-<kind>-<code digest>-<parameters
    digest>.onnx`` (``folder`` defaults to :func:`cache_folder`), ``kind`` being ``trunk``,
    ``head`` or ``pairs`` (trunk and head joined), the first and last with ``-winograd`` for
    Winograd convolutions, pairs with ``-per-image`` for large images (see
    :func:`.pairs.export_pairs`); or ``weights``, the trunk's parameters those graphs read
    (``.onnx.data``). ``hashes``: :func:`parameter_hashes` of ``net``, when the caller has
    them."""
    return os.path.join(folder or cache_folder(), "{}-{}-{}-{}.onnx{}".format(
        net.model, kind, _code_digest(kind), _params_digest(net, kind, hashes),
        ".data" if kind == "weights" else ""))


def remove_stale_exports(path):
    """Deletes the cache entries of ``path``'s model and kind that other versions of the code
    made (so upgrades do not pile up files of up to 60 MB); those of other weights stay."""
    folder, name = os.path.split(path)
    model_kind, code, _ = name.rsplit("-", 2)
    # <model>-<kind>-<code>-<params>.onnx[.data], or the earliest <model>-<kind>-<digest>.onnx
    entry = re.compile(re.escape(model_kind) + r"-([0-9a-f]+)(-[0-9a-f]+)?\.onnx(\.data)?$")
    for other in os.listdir(folder):
        match = entry.match(other)
        if match and (match.group(2) is None or match.group(1) != code):
            logger.info("removing %s, exported by another version", other)
            try:
                os.remove(os.path.join(folder, other))
            except OSError:
                pass  # another process got there first, or it is read-only: harmless


def remove_abandoned(folder):
    """Deletes what killed exports left: ``.*.part`` files in ``folder`` and ``lpips-export-*``
    folders in the system's temporary folder (up to 220 and 2 x 57 MB for VGG), when untouched
    for ``ABANDONED_SECONDS``: another process may be exporting now."""
    now = time.time()
    candidates = []
    if os.path.isdir(folder):
        candidates += [os.path.join(folder, n) for n in os.listdir(folder)
                       if n.startswith(".") and n.endswith(".part")]
    temp = tempfile.gettempdir()
    candidates += [os.path.join(temp, n) for n in os.listdir(temp)
                   if n.startswith(export.EXPORT_TEMP_PREFIX)]
    for path in candidates:
        try:
            if now - os.stat(path).st_mtime < ABANDONED_SECONDS:
                continue
            logger.info("removing %s, left by an interrupted export", path)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:
            pass  # gone already, or not ours to remove: harmless


# The graphs an engine may read, in the order they are made (later ones read earlier ones):
# role -> whether every engine needs it (the others are made when first asked for).
ROLES = (("weights", True), ("trunk", True), ("head", True), ("pairs", True),
         ("head-maps", False), ("pairs-maps", False), ("trunk-dropout", False))


class ExportCache(object):
    """The cached graphs of one model and variant: ``winograd`` (the trunk's wide convolutions
    rewritten) and ``per_image`` (pairs graphs for large images, see
    :func:`.pairs.export_pairs`). Paths by role (:data:`ROLES`); the graphs every engine
    needs are made by :meth:`make_missing`, the others by :meth:`ensure`."""

    def __init__(self, net, winograd=True, per_image=False, hashes=None):
        self.net = net
        self._exports = {
            "weights": None,  # written by the trunk's export
            "trunk": lambda path: export.export_trunk(net, path, self.paths["weights"], winograd),
            "head": lambda path: export.export_head(net, path),
            "pairs": lambda path: pairs.export_pairs(self.paths["trunk"], self.paths["head"],
                                                     path, per_image=per_image),
            "head-maps": lambda path: export.export_head(net, path, per_tap=True),
            "pairs-maps": lambda path: pairs.export_pairs(
                self.paths["trunk"], self.paths["head-maps"], path, per_image=per_image),
            "trunk-dropout": lambda path: export.export_trunk(
                net, path, self.paths["weights"], winograd, dropout=True)}
        # Sorting has no ONNX export in NNabla: methods other than spatial run their head in
        # NNabla on the trunk's features, so they have no head or pairs graphs.
        self.head_exported = net.method == "spatial"
        roles = [(role, needed) for role, needed in ROLES
                 if self.head_exported or not role.startswith(("head", "pairs"))]
        self._needed = {role for role, needed in roles if needed}
        suffix = "-winograd" if winograd else ""
        kinds = {role: role + (suffix if role.startswith(("trunk", "pairs")) else "")
                 + ("-per-image" if role.startswith("pairs") and per_image else "")
                 for role, _ in roles}
        self.kinds = kinds
        folder = cache_folder()
        self.hashes = hashes or parameter_hashes(net)
        self.paths = {role: cache_path(net, kind, folder, self.hashes)
                      for role, kind in kinds.items()}

    def make_missing(self, wanted=()):
        """Exports the missing graphs every engine needs, and those of the roles ``wanted``
        (with what they are made from)."""
        if "pairs-maps" in wanted:
            wanted = tuple(wanted) + ("head-maps",)
        missing = [role for role in self.paths if not os.path.isfile(self.paths[role])
                   and (role in self._needed or role in wanted)]
        if missing:
            remove_abandoned(os.path.dirname(self.paths[missing[0]]))
        if "weights" in missing and "trunk" not in missing:
            missing.append("trunk")
        for role in self.paths:  # in ROLES' order: what a graph reads is made first
            if role not in missing:
                continue
            path = self.paths[role]
            if self._exports[role] is not None:
                logger.info("exporting the %s %s to %s", self.net.model, self.kinds[role], path)
                self._exports[role](path)
            remove_stale_exports(path)

    def ensure(self, role):
        """The path of ``role``'s graph, exported first when missing."""
        if not os.path.isfile(self.paths[role]):
            self.make_missing(wanted=(role,))
        return self.paths[role]

    def rebuild(self, error):
        """A cached graph that does not load (a disk error, an interrupted copy of the cache)
        is exported again, with the graphs made from it, instead of failing every run."""
        logger.warning("a cached ONNX graph of the %s model cannot be used (%s); exporting "
                       "its graphs again", self.net.model, str(error).splitlines()[0][:200])
        for path in self.paths.values():
            if os.path.exists(path):
                os.remove(path)
        self.make_missing()
