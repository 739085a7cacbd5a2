"""The engines: ONNX Runtime against NNabla, the on-disk export cache, and the choice."""
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import pytest

from metrics.lpips import Scorer
from metrics.lpips.engines import BackendError
from metrics.lpips.engines import onnxruntime_engine

MODELS = ["alex", "vgg", "squeeze"]


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


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    """This test's own export cache, tmp_path / "onnx" (empty: every graph is exported)."""
    monkeypatch.setenv(onnxruntime_engine.CACHE_DIR_ENV, str(tmp_path / "onnx"))
    return tmp_path / "onnx"


def test_export_is_cached_on_disk(params_dir, tmp_path, own_cache):
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(tmp_path))
    Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime")
    exported = sorted(os.listdir(str(tmp_path / "onnx")))
    assert [name.split("-")[:-2] for name in exported] == [["alex", "head"],
                                                           ["alex", "pairs", "winograd"],
                                                           ["alex", "trunk", "winograd"],
                                                           ["alex", "weights"]]
    stamps = [os.stat(str(tmp_path / "onnx" / name)).st_mtime_ns for name in exported]
    Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime")
    assert [os.stat(str(tmp_path / "onnx" / name)).st_mtime_ns for name in exported] == stamps
    # The baseline (no lin layers) needs its own head and pairs graph, and gets them.
    Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime", lpips=False)
    added = sorted(set(os.listdir(str(tmp_path / "onnx"))) - set(exported))
    assert [name.split("-")[1] for name in added] == ["head", "pairs"]
    # Direct convolutions are a trunk and pairs graph of their own, reading the same weights.
    Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime", winograd=False)
    added = sorted(set(os.listdir(str(tmp_path / "onnx"))) - set(exported) - set(added))
    assert [name.split("-")[1:-2] for name in added] == [["pairs"], ["trunk"]]


@pytest.mark.parametrize("model", MODELS)
def test_the_cache_holds_about_one_copy_of_the_weights(model, params_dir, squeeze_params_dir,
                                                       own_cache):
    # One configuration: at most 1.2x the .h5. Each further one (the other version,
    # direct convolutions, no lin layers) adds its graphs, not another copy of the weights.
    folder = squeeze_params_dir if model == "squeeze" else params_dir
    weights = os.path.getsize(os.path.join(folder, model + "_with_LPIPS.h5"))
    x = np.zeros((2, 3, 64, 64), np.float32)
    sizes = []
    for version, winograd, use_lpips in (("0.1", True, True), ("0.0", True, True),
                                         ("0.1", False, True), ("0.1", True, False)):
        scorer = Scorer(model, version=version, params_dir=folder, lpips=use_lpips,
                        backend="onnxruntime", winograd=winograd)
        scorer.score_inputs(x[:1], x[1:])
        scorer.features(x)
        sizes.append(sum(path.stat().st_size for path in own_cache.iterdir()))
    assert len(list(own_cache.glob("*.onnx.data"))) == 1
    assert sizes[0] <= 1.2 * weights, (sizes[0], weights)
    assert max(np.diff(sizes)) <= 0.1 * weights, (sizes, weights)


def test_winograd_transforms_are_made_at_load_and_not_kept(params_dir, monkeypatch, own_cache):
    # The cache stores the filters; each session gets the transforms made from them, which
    # ONNX Runtime copies: the engine keeps no reference (235 MB for VGG) once it is created.
    from metrics.lpips.engines import onnx_weights
    handed = []

    def recording(path, checked):
        made = supply(path, checked)
        handed.extend(made.values())
        return made

    supply = onnx_weights.initializers_to_supply
    monkeypatch.setattr(onnx_weights, "initializers_to_supply", recording)
    scorer = Scorer("vgg", params_dir=params_dir, backend="onnxruntime")
    x0, x1 = (np.random.default_rng(k).random((2, 3, 64, 64), dtype=np.float32) * 2 - 1
              for k in (1, 2))
    first = scorer.score_inputs(x0, x1)
    assert len(handed) == 11  # conv2_1 ... conv5_3
    for array in handed:
        array[...] = 0
    np.testing.assert_array_equal(scorer.score_inputs(x0, x1), first)
    np.testing.assert_allclose(first, Scorer("vgg", params_dir=params_dir, backend="onnxruntime",
                                             winograd=False).score_inputs(x0, x1), atol=1e-5)


def test_exports_a_killed_process_left_are_removed(params_dir, tmp_path, monkeypatch, own_cache):
    import tempfile
    from metrics.lpips.engines import onnx_export
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(tmp_path))
    cache = tmp_path / "onnx"
    cache.mkdir()
    old_part = cache / ".alex-trunk-winograd-x-y.onnx.abc.part"
    old_dir = tmp_path / "tmp" / (onnx_export.EXPORT_TEMP_PREFIX + "abc")
    new_part = cache / ".alex-head-x-y.onnx.def.part"  # perhaps another process's, now
    for path in (old_part, new_part):
        path.write_bytes(b"partial")
    old_dir.mkdir()
    two_hours_ago = time.time() - 7200
    for path in (old_part, old_dir):
        os.utime(str(path), (two_hours_ago, two_hours_ago))
    Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime")
    assert not old_part.exists() and not old_dir.exists() and new_part.exists()
    assert os.listdir(str(tmp_path / "tmp")) == []  # the export's own folder is gone too


def test_export_cache_follows_the_rewrite_code(params_dir, monkeypatch, tmp_path):
    from metrics.lpips.engines import winograd
    net = Scorer("alex", params_dir=params_dir, backend="nnabla").net
    before = onnxruntime_engine.onnx_cache_path(net, "trunk-winograd", str(tmp_path))
    plain_before = onnxruntime_engine.onnx_cache_path(net, "trunk", str(tmp_path))
    weights_before = onnxruntime_engine.onnx_cache_path(net, "weights", str(tmp_path))
    changed = tmp_path / "winograd.py"
    changed.write_bytes(open(winograd.__file__, "rb").read() + b"# changed\n")
    monkeypatch.setattr(winograd, "__file__", str(changed))
    assert onnxruntime_engine.onnx_cache_path(net, "trunk-winograd", str(tmp_path)) != before
    assert onnxruntime_engine.onnx_cache_path(net, "trunk", str(tmp_path)) == plain_before
    assert onnxruntime_engine.onnx_cache_path(net, "weights", str(tmp_path)) == weights_before


@pytest.mark.parametrize("module", ["lpips", "trunks", "distances", "engines.onnx_weights"])
def test_export_cache_follows_the_metric_code(params_dir, monkeypatch, tmp_path, module):
    # The entries are built from these modules: an edit to them must not meet an old export.
    import importlib
    source = importlib.import_module("metrics.lpips." + module)
    net = Scorer("alex", params_dir=params_dir, backend="nnabla").net
    before = {kind: onnxruntime_engine.onnx_cache_path(net, kind, str(tmp_path))
              for kind in ("trunk", "head", "pairs-winograd", "weights")}
    changed = tmp_path / (module.split(".")[-1] + ".py")
    changed.write_bytes(open(source.__file__, "rb").read() + b"# changed\n")
    monkeypatch.setattr(source, "__file__", str(changed))
    for kind, path in before.items():
        assert onnxruntime_engine.onnx_cache_path(net, kind, str(tmp_path)) != path


def test_export_cache_follows_the_input_scaling(params_dir, tmp_path):
    # Versions 0.1 and 0.0 share the trunk's weights but not its input scaling.
    v01, v00 = (Scorer("alex", version=v, params_dir=params_dir, backend="nnabla").net
                for v in ("0.1", "0.0"))
    assert v01.apply_scale != v00.apply_scale
    for kind in ("trunk", "trunk-winograd", "pairs-winograd"):
        paths = [onnxruntime_engine.onnx_cache_path(net, kind, str(tmp_path)) for net in (v01, v00)]
        assert paths[0] != paths[1]


def test_export_removes_entries_of_other_code(params_dir, tmp_path, own_cache):
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(tmp_path))
    net = Scorer("alex", params_dir=params_dir, backend="nnabla").net
    code = os.path.basename(onnxruntime_engine.onnx_cache_path(net, "trunk-winograd")).split("-")[3]
    folder = own_cache
    folder.mkdir(exist_ok=True)
    stale = ["alex-trunk-winograd-0123456789abcdef.onnx",  # the earlier naming
             "alex-trunk-winograd-00000000-111111111111.onnx", "alex-head-00000000-111111111111.onnx",
             "alex-weights-00000000-111111111111.onnx.data"]
    kept = ["alex-trunk-winograd-{}-222222222222.onnx".format(code),  # other weights, same code
            "alex-trunk-00000000-111111111111.onnx",  # a kind not exported here
            "vgg-trunk-winograd-00000000-111111111111.onnx", "notes.txt"]
    for name in stale + kept:
        (folder / name).write_bytes(b"x")
    Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime")
    names = set(os.listdir(str(folder)))
    assert not names & set(stale)
    assert set(kept) <= names and len(names) == len(kept) + 4  # + weights, head, trunk, pairs


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


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "zeroed"])
@pytest.mark.parametrize("role", ["trunk", "pairs", "weights"])
def test_a_damaged_cache_entry_is_rebuilt(params_dir, tmp_path, damage, role, caplog, own_cache):
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(tmp_path))
    x0, x1 = (np.random.default_rng(k).random((2, 3, 64, 64), dtype=np.float32) * 2 - 1
              for k in (1, 2))
    first = Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime")
    expected = first.score_inputs(x0, x1), first.features(x0)[2]
    entry = next(tmp_path.glob("onnx/alex-{}-*.onnx*".format(role)))
    size = entry.stat().st_size
    data = entry.read_bytes()  # "zeroed": as a crash can leave a file whose data never landed
    entry.write_bytes({"truncated": data[:size // 3], "empty": b"",
                       "garbage": b"\x00not a protobuf" * 100,
                       "zeroed": data[:size // 3] + bytes(size // 3) + data[2 * (size // 3):]}[damage])
    with caplog.at_level("WARNING"):
        again = Scorer("alex", params_dir=str(tmp_path), backend="onnxruntime")
        np.testing.assert_array_equal(again.score_inputs(x0, x1), expected[0])
        np.testing.assert_array_equal(again.features(x0)[2], expected[1])
    assert "cannot be used" in caplog.text and "exporting its graphs again" in caplog.text
    assert entry.stat().st_size == size  # rebuilt whole


def test_a_blocked_export_cache_falls_back_or_says_why(params_dir, tmp_path, caplog, monkeypatch):
    (tmp_path / "onnx").write_text("a file where the cache folder goes")
    monkeypatch.setattr(onnxruntime_engine, "cache_folder", lambda: str(tmp_path / "onnx"))
    with caplog.at_level("WARNING"):
        scorer = Scorer("alex", params_dir=params_dir)  # auto: NNabla, with a warning
    assert scorer.backend == "nnabla" and "NNabla runs the model instead" in caplog.text
    with pytest.raises(BackendError, match="cannot cache its exported graphs"):
        Scorer("alex", params_dir=params_dir, backend="onnxruntime")


def test_exports_never_go_to_the_weights_folder(params_dir, tmp_path, monkeypatch, caplog):
    weights = tmp_path / "weights"  # perhaps read-only, or shared by a team
    weights.mkdir()
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(weights))
    Scorer("alex", params_dir=str(weights), backend="onnxruntime")
    assert os.listdir(str(weights)) == ["alex_with_LPIPS.h5"]
    assert any(n.startswith("alex-pairs") for n in os.listdir(os.environ[onnxruntime_engine.CACHE_DIR_ENV]))
    # The cache folder's fallbacks: the variable's folder, the data home's, a temporary one.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(onnxruntime_engine.CACHE_DIR_ENV, str(blocker / "cache"))
    monkeypatch.setattr(onnxruntime_engine, "default_params_dir", lambda: str(tmp_path / "home"))
    assert onnxruntime_engine.cache_folder() == str(tmp_path / "home" / "onnx")
    monkeypatch.setattr(onnxruntime_engine, "default_params_dir", lambda: str(blocker / "home"))
    with caplog.at_level("WARNING"):
        folder = onnxruntime_engine.cache_folder()
    assert folder.startswith(tempfile.gettempdir()) and "set $NNABLA_LPIPS_CACHE_DIR" in caplog.text


def test_image_size_decides_winograd_or_direct(params_dir, monkeypatch, own_cache):
    # Images over the trunk's winograd_max_pixels run direct convolutions (faster there, and
    # leaner): the same scores as asking for them, within rounding of Winograd's.
    import dataclasses
    import onnx
    from metrics.lpips import trunks
    monkeypatch.setitem(trunks.TRUNKS, "alex", dataclasses.replace(
        trunks.TRUNKS["alex"], winograd_max_pixels=64 * 64))
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
        graph = onnx.load(scorer.engine._paths["pairs"], load_external_data=False).graph
        assert any(node.op_type == "MatMul" for node in graph.node) == winograd


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
        assert per_image._paths[role] != batched._paths[role]
        nodes = onnx.load(per_image._paths[role], load_external_data=False).graph.node
        splits = [node for node in nodes if node.op_type == "Split"]
        assert [list(node.input) for node in splits] == [["x"]]
        assert sum(node.op_type == "ReduceSumSquare" for node in nodes) == 10  # 5 taps, a and b
        assert not any(node.op_type == "ReduceSum" for node in nodes)


def test_parameter_hashes_name_the_same_entries(params_dir, tmp_path):
    from metrics.lpips import LPIPS
    net = LPIPS("alex", params_dir=params_dir)
    hashes = onnxruntime_engine.parameter_hashes(net)
    for kind in ("weights", "trunk-winograd", "head", "pairs-maps"):
        assert (onnxruntime_engine.onnx_cache_path(net, kind, str(tmp_path), hashes)
                == onnxruntime_engine.onnx_cache_path(net, kind, str(tmp_path)))
    net.parameters()["lin0_model_1_weight"].d *= 2
    assert (onnxruntime_engine.onnx_cache_path(net, "head", str(tmp_path))
            != onnxruntime_engine.onnx_cache_path(net, "head", str(tmp_path), hashes))
