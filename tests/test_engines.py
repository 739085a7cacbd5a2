"""The engines: their contract, ONNX Runtime against NNabla, and the choice (the export cache has
test_onnx_cache.py)."""
import inspect
import os
import shutil
import signal
import sys

import numpy as np
import pytest

from metrics.lpips import Scorer
from metrics.lpips.engines import BackendError, Engine

MODELS = ["alex", "vgg", "squeeze"]


def test_every_engine_keeps_the_contract(params_dir):
    # Each engine is an Engine that implements every member its callers use, with the same
    # arguments, and says what it can do through capabilities rather than its name.
    from metrics.lpips.engines.nnabla_engine import NNablaEngine
    from metrics.lpips.engines.onnxruntime_engine import OnnxRuntimeEngine
    abstract = sorted(Engine.__abstractmethods__)
    assert abstract == ["distances", "features", "memory_kind", "pair_distances",
                        "pair_layer_maps", "reduce_maps", "to_input"]
    for cls in (NNablaEngine, OnnxRuntimeEngine):
        assert issubclass(cls, Engine) and not cls.__abstractmethods__
        for member in abstract:
            ours = inspect.signature(getattr(Engine, member)).parameters
            theirs = inspect.signature(getattr(cls, member)).parameters
            assert list(theirs)[-len(ours) + 1:] == list(ours)[1:], (cls, member)
    nnabla, ort = (Scorer("alex", params_dir=params_dir, backend=b).engine
                   for b in ("nnabla", "onnxruntime"))
    assert (nnabla.takes_dropout_masks, ort.takes_dropout_masks) == (False, True)
    assert nnabla.pixels_per_pass is None and ort.pixels_per_pass > 0
    with pytest.raises(ValueError, match="takes no dropout masks"):
        nnabla.features(np.zeros((1, 3, 32, 32), np.float32), masks=[])


def test_no_caller_asks_an_engine_its_name():
    # Capabilities, not names: only engines/select.py, which turns --backend into an engine,
    # compares one.
    import metrics.lpips
    root = os.path.dirname(metrics.lpips.__file__)
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py") and name != "select.py":
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                for needle in ('engine.name ==', 'backend == "onnxruntime"',
                               'name == "onnxruntime"', 'name == "nnabla"'):
                    if needle in text:
                        found.append((os.path.relpath(path, root), needle))
    assert found == []


@pytest.mark.heavy
@pytest.mark.parametrize("use_lpips", [True, False])
@pytest.mark.parametrize("model", MODELS)
def test_onnxruntime_equals_nnabla(model, use_lpips, params_dir, squeeze_params_dir):
    folder = squeeze_params_dir if model == "squeeze" else params_dir
    rng = np.random.default_rng(1)

    def scorer(backend, spatial):
        return Scorer(model, params_dir=folder, backend=backend, lpips=use_lpips, spatial=spatial)

    ours, ort = scorer("nnabla", True), scorer("onnxruntime", True)  # ONNX trunk, NNabla head
    ort_head = scorer("onnxruntime", False)  # ONNX trunk and head
    assert ort.backend == ort_head.backend == "onnxruntime" and not ort_head.spatial
    # Sizes other than the export sizes, odd ones included (SqueezeNet's ceil-mode pools).
    for shape in [(2, 3, 64, 64), (3, 3, 97, 131), (1, 3, 40, 41)]:
        x0, x1 = (rng.random(shape, dtype=np.float32) * 2 - 1 for _ in range(2))
        (s0, m0), (s1, m1) = ours.score_inputs(x0, x1), ort.score_inputs(x0, x1)
        np.testing.assert_allclose(s1, s0, atol=1e-5)
        np.testing.assert_allclose(m1, m0, atol=1e-5)
        np.testing.assert_allclose(ort_head.score_inputs(x0, x1), s0, atol=1e-5)


def test_onnxruntime_equals_nnabla_without_input_scaling(params_dir):
    # Version 0.0 feeds the trunk unscaled images: its graph must not scale them.
    rng = np.random.default_rng(2)
    x0, x1 = (rng.random((2, 3, 48, 56), dtype=np.float32) * 2 - 1 for _ in range(2))
    ours, ort = (Scorer("alex", version="0.0", params_dir=params_dir, backend=backend)
                 for backend in ("nnabla", "onnxruntime"))
    assert not ort.net.apply_scale
    np.testing.assert_allclose(ort.score_inputs(x0, x1), ours.score_inputs(x0, x1), atol=1e-5)
    np.testing.assert_allclose(ort.features(x0)[0], ours.features(x0)[0], atol=1e-5)


def test_export_prints_nothing(params_dir, tmp_path, capfd):
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(tmp_path))
    Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime")
    assert capfd.readouterr().out == ""


def test_auto_prefers_onnxruntime_on_cpu(params_dir):
    assert Scorer("alex", params_dir=params_dir).backend == "onnxruntime"


def test_explicit_onnxruntime_without_it_is_an_error(params_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(BackendError, match="needs onnxruntime"):
        Scorer("alex", params_dir=params_dir, backend="onnxruntime")
    assert Scorer("alex", params_dir=params_dir).backend == "nnabla"  # auto falls back


def test_unknown_backend_lists_the_valid_ones(params_dir):
    with pytest.raises(ValueError, match="auto, nnabla, onnxruntime"):
        Scorer("alex", params_dir=params_dir, backend="tensorrt")


def test_image_size_decides_winograd_or_direct(params_dir, monkeypatch, own_cache):
    # Images over the tuning table's winograd_max_pixels run direct convolutions (faster there, and
    # leaner): the same scores as asking for them, within rounding of Winograd's.
    import dataclasses
    import onnx
    from metrics.lpips.engines import tuning
    monkeypatch.setitem(tuning.TUNING, "alex", dataclasses.replace(
        tuning.TUNING["alex"], winograd_max_pixels=64 * 64))
    rng = np.random.default_rng(5)
    x = rng.random((2, 3, 96, 80), dtype=np.float32) * 2 - 1
    small = x[:, :, :64, :64]
    by_size, direct, always = (Scorer("alex", params_dir=params_dir, backend="onnxruntime",
                                      winograd=w) for w in (None, False, True))
    np.testing.assert_array_equal(by_size.score_inputs(small[:1], small[1:]),
                                  always.score_inputs(small[:1], small[1:]))
    assert by_size.engine._large is None  # 64 x 64: Winograd's graphs
    # Large images' pairs graph runs the trunk per image and fuses the head's squared norms.
    np.testing.assert_allclose(by_size.score_inputs(x[:1], x[1:]),
                               direct.score_inputs(x[:1], x[1:]), rtol=1e-6)
    np.testing.assert_array_equal(by_size.features(x)[4], direct.features(x)[4])
    assert by_size.engine._large is not None
    np.testing.assert_allclose(always.score_inputs(x[:1], x[1:]), direct.score_inputs(x[:1], x[1:]),
                               atol=1e-5)
    for scorer, winograd in ((by_size, True), (always, True), (direct, False)):
        graph = onnx.load(scorer.engine._cache.paths["pairs"], load_external_data=False).graph
        assert any(node.op_type == "MatMul" for node in graph.node) == winograd


@pytest.mark.heavy
@pytest.mark.parametrize("model", ["alex", "vgg"])
def test_large_images_pairs_graph_runs_the_trunk_per_image(model, params_dir):
    # Large images' engine (no arena) splits the input, not the taps, and fuses the squared
    # norms of the head: the same scores and maps as the batched graph.
    import onnx
    from metrics.lpips import LPIPS
    from metrics.lpips.engines.onnxruntime_engine import OnnxRuntimeEngine
    net = LPIPS(model, params_dir=params_dir)
    batched, per_image = (OnnxRuntimeEngine(net, winograd=False, arena=arena)
                          for arena in (True, False))
    rng = np.random.default_rng(6)
    x = rng.random((4, 3, 72, 88), dtype=np.float32) * 2 - 1  # two pairs
    np.testing.assert_allclose(per_image.pair_distances(x), batched.pair_distances(x),
                               rtol=1e-6, atol=1e-9)
    for a, b in zip(per_image.pair_layer_maps(x), batched.pair_layer_maps(x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    for role in ("pairs", "pairs-maps"):
        assert per_image._cache.paths[role] != batched._cache.paths[role]
        nodes = onnx.load(per_image._cache.paths[role], load_external_data=False).graph.node
        splits = [node for node in nodes if node.op_type == "Split"]
        assert [list(node.input) for node in splits] == [["x"]]
        assert sum(node.op_type == "ReduceSumSquare" for node in nodes) == 10  # 5 taps, a and b
        assert not any(node.op_type == "ReduceSum" for node in nodes)




def test_shard_bounds_cover_the_batch_in_order():
    from metrics.lpips.engines import shards
    assert shards.bounds(5, 2) == [(0, 2), (2, 5)]
    assert shards.bounds(1, 2) == [(0, 1)]
    assert shards.bounds(3, 8) == [(0, 1), (1, 2), (2, 3)]
    assert shards.bounds(7, 1) == [(0, 7)]
    assert shards.bounds(7, 2, minimum=4) == [(0, 7)] and len(shards.bounds(8, 2, minimum=4)) == 2
    x = np.arange(10)[:, None]  # five pairs (i, 5 + i)
    feeds = shards.split_feed({"x": x}, [(0, 2), (2, 5)], pairs=True)
    assert [f["x"][:, 0].tolist() for f in feeds] == [[0, 1, 5, 6], [2, 3, 4, 7, 8, 9]]


def test_passes_split_among_threads_equal_one_thread(params_dir, monkeypatch):
    # Each thread runs a shard of the batch on one single-threaded session (engines/shards.py):
    # pairs keep their partners, every output stays in order, and shards of at least 8 images
    # give the same bits as the whole batch (a pair's score does not depend on the split).
    from metrics.lpips import LPIPS
    from metrics.lpips.engines.onnxruntime_engine import OnnxRuntimeEngine
    net = LPIPS("alex", params_dir=params_dir)
    split, whole = OnnxRuntimeEngine(net, threads=3), OnnxRuntimeEngine(net, threads=1)
    rng = np.random.default_rng(7)
    x = rng.random((24, 3, 40, 48), dtype=np.float32) * 2 - 1  # 12 pairs: 3 shards of 4
    scores = split.pair_distances(x)
    np.testing.assert_array_equal(scores, whole.pair_distances(x))
    alone = [whole.pair_distances(x[[i, 12 + i]])[0] for i in range(12)]
    np.testing.assert_allclose(scores, alone, rtol=1e-6)
    feats = split.features(x)
    for a, b in zip(feats, whole.features(x)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        split.distances([f[:12] for f in feats], [f[12:] for f in feats]), scores)
    for a, b in zip(split.pair_layer_maps(x), whole.pair_layer_maps(x)):
        np.testing.assert_array_equal(a, b)
    images = rng.integers(0, 256, (24, 40, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(split.to_input(images), whole.to_input(images))
    assert {"pairs", "trunk", "head", "uint8"} <= {role for role, threads in split._sessions
                                                   if threads == 1}
    assert not any(threads == 3 for _, threads in split._sessions)
    split.pair_distances(x[[0, 12]])  # one pair: on the single-threaded session, which exists
    assert ("pairs", 3) not in split._sessions
    first = OnnxRuntimeEngine(net, threads=3)
    first.pair_distances(x[[0, 12]])
    assert set(first._sessions) == {("pairs", 3)}  # else: every thread on one pass
    # Below 4 pairs a shard, and above the tuning table's split_max_pixels, no split.
    first.pair_distances(x[[0, 1, 2, 3, 4, 12, 13, 14, 15, 16]])
    assert set(first._sessions) == {("pairs", 3)}
    import dataclasses
    from metrics.lpips.engines import tuning
    monkeypatch.setitem(tuning.TUNING, "alex", dataclasses.replace(
        tuning.TUNING["alex"], split_max_pixels=40 * 47))
    unsplit = OnnxRuntimeEngine(net, threads=3)
    np.testing.assert_array_equal(unsplit.pair_distances(x), scores)
    assert set(unsplit._sessions) == {("pairs", 3)}


def test_split_passes_work_in_a_forked_child(params_dir):
    # A fork keeps the pool object but not its threads: a child that scores must not hang.
    from metrics.lpips import LPIPS
    from metrics.lpips.engines.onnxruntime_engine import OnnxRuntimeEngine
    engine = OnnxRuntimeEngine(LPIPS("alex", params_dir=params_dir), threads=2)
    x = np.random.default_rng(8).random((16, 3, 32, 32), dtype=np.float32) * 2 - 1
    scores = engine.pair_distances(x)  # the parent's pool now has threads
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: score, report, and leave without running pytest's exit
        signal.alarm(30)  # a hung child dies, and the parent reads nothing
        try:
            os.write(write, np.asarray(engine.pair_distances(x), np.float32).tobytes())
        finally:
            os._exit(0)
    os.close(write)
    got = b""
    while len(got) < scores.nbytes:
        chunk = os.read(read, scores.nbytes)
        if not chunk:
            break
        got += chunk
    os.waitpid(pid, 0)
    np.testing.assert_array_equal(np.frombuffer(got, np.float32), scores)
