"""The export cache (engines/onnx/cache.py): names, digests, the one weights file, clean-up,
rebuilding damaged entries, and where it lives."""
import os
import shutil
import tempfile
import time

import numpy as np
import pytest

from metrics.lpips import Scorer
from metrics.lpips.engines import BackendError
from metrics.lpips.engines.onnx import cache, export

MODELS = ["alex", "vgg", "squeeze"]
CODE_EDIT = b"\n_AN_EDIT_THAT_CHANGES_THE_CODE = 1\n"


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


@pytest.mark.heavy
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


@pytest.mark.heavy
def test_winograd_transforms_are_made_at_load_and_not_kept(params_dir, monkeypatch):
    # The cache stores the filters; each session gets the transforms made from them, which
    # ONNX Runtime copies: the engine keeps no reference (235 MB for VGG) once it is created.
    from metrics.lpips.engines.onnx import weights_file
    handed = []

    def recording(path, checked):
        made = supply(path, checked)
        handed.extend(made.values())
        return made

    supply = weights_file.initializers_to_supply
    monkeypatch.setattr(weights_file, "initializers_to_supply", recording)
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
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(tmp_path))
    cache = tmp_path / "onnx"
    cache.mkdir()
    old_part = cache / ".alex-trunk-winograd-x-y.onnx.abc.part"
    old_dir = tmp_path / "tmp" / (export.EXPORT_TEMP_PREFIX + "abc")
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
    from metrics.lpips.engines.onnx import winograd
    net = Scorer("alex", params_dir=params_dir, backend="nnabla").net
    before = cache.cache_path(net, "trunk-winograd", str(tmp_path))
    plain_before = cache.cache_path(net, "trunk", str(tmp_path))
    weights_before = cache.cache_path(net, "weights", str(tmp_path))
    changed = tmp_path / "winograd.py"
    changed.write_bytes(open(winograd.__file__, "rb").read() + CODE_EDIT)
    monkeypatch.setattr(winograd, "__file__", str(changed))
    assert cache.cache_path(net, "trunk-winograd", str(tmp_path)) != before
    assert cache.cache_path(net, "trunk", str(tmp_path)) == plain_before
    assert cache.cache_path(net, "weights", str(tmp_path)) == weights_before


@pytest.mark.parametrize("module", ["lpips", "trunks", "distances", "engines.onnx.graph",
                                    "engines.onnx.rewrites", "engines.onnx.export",
                                    "engines.onnx.pairs", "engines.onnx.weights_file"])
def test_export_cache_follows_the_metric_code(params_dir, monkeypatch, tmp_path, module):
    # The entries are built from these modules: an edit to them must not meet an old export.
    import importlib
    source = importlib.import_module("metrics.lpips." + module)
    net = Scorer("alex", params_dir=params_dir, backend="nnabla").net
    before = {kind: cache.cache_path(net, kind, str(tmp_path))
              for kind in ("trunk", "head", "pairs-winograd", "weights")}
    changed = tmp_path / (module.split(".")[-1] + ".py")
    changed.write_bytes(open(source.__file__, "rb").read() + CODE_EDIT)
    monkeypatch.setattr(source, "__file__", str(changed))
    for kind, path in before.items():
        assert cache.cache_path(net, kind, str(tmp_path)) != path


def test_export_cache_follows_the_input_scaling(params_dir, tmp_path):
    # Versions 0.1 and 0.0 share the trunk's weights but not its input scaling.
    v01, v00 = (Scorer("alex", version=v, params_dir=params_dir, backend="nnabla").net
                for v in ("0.1", "0.0"))
    assert v01.apply_scale != v00.apply_scale
    for kind in ("trunk", "trunk-winograd", "pairs-winograd"):
        paths = [cache.cache_path(net, kind, str(tmp_path)) for net in (v01, v00)]
        assert paths[0] != paths[1]


def test_export_removes_entries_of_other_code(params_dir, tmp_path, own_cache):
    shutil.copy(os.path.join(params_dir, "alex_with_LPIPS.h5"), str(tmp_path))
    net = Scorer("alex", params_dir=params_dir, backend="nnabla").net
    code = os.path.basename(cache.cache_path(net, "trunk-winograd")).split("-")[3]
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


DAMAGE_INPUTS = [np.random.default_rng(k).random((2, 3, 64, 64), dtype=np.float32) * 2 - 1
                 for k in (1, 2)]


@pytest.fixture(scope="module")
def whole_alex_cache(params_dir, tmp_path_factory):
    """A cache of the alex graphs, made once, and what they compute on DAMAGE_INPUTS."""
    folder = tmp_path_factory.mktemp("whole") / "onnx"
    saved = os.environ[cache.CACHE_DIR_ENV]
    os.environ[cache.CACHE_DIR_ENV] = str(folder)
    try:
        scorer = Scorer("alex", params_dir=params_dir, backend="onnxruntime")
        x0, x1 = DAMAGE_INPUTS
        expected = scorer.score_inputs(x0, x1), scorer.features(x0)[2]
    finally:
        os.environ[cache.CACHE_DIR_ENV] = saved
    return folder, expected


@pytest.mark.heavy
@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "zeroed"])
@pytest.mark.parametrize("role", ["trunk", "pairs", "weights"])
def test_a_damaged_cache_entry_is_rebuilt(params_dir, damage, role, caplog, own_cache,
                                          whole_alex_cache):
    shutil.copytree(str(whole_alex_cache[0]), str(own_cache))
    x0, x1 = DAMAGE_INPUTS
    expected = whole_alex_cache[1]
    entry = next(own_cache.glob("alex-{}-*.onnx*".format(role)))
    size = entry.stat().st_size
    data = entry.read_bytes()  # "zeroed": as a crash can leave a file whose data never landed
    entry.write_bytes({"truncated": data[:size // 3], "empty": b"",
                       "garbage": b"\x00not a protobuf" * 100,
                       "zeroed": data[:size // 3] + bytes(size // 3) + data[2 * (size // 3):]}[damage])
    with caplog.at_level("WARNING"):
        again = Scorer("alex", params_dir=params_dir, backend="onnxruntime")
        np.testing.assert_array_equal(again.score_inputs(x0, x1), expected[0])
        np.testing.assert_array_equal(again.features(x0)[2], expected[1])
    assert "cannot be used" in caplog.text and "exporting its graphs again" in caplog.text
    assert entry.stat().st_size == size  # rebuilt whole


def test_a_blocked_export_cache_falls_back_or_says_why(params_dir, tmp_path, caplog, monkeypatch):
    (tmp_path / "onnx").write_text("a file where the cache folder goes")
    monkeypatch.setattr(cache, "cache_folder", lambda: str(tmp_path / "onnx"))
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
    assert any(n.startswith("alex-pairs") for n in os.listdir(os.environ[cache.CACHE_DIR_ENV]))
    # The cache folder's fallbacks: the variable's folder, the data home's, a temporary one.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(blocker / "cache"))
    monkeypatch.setattr(cache, "default_params_dir", lambda: str(tmp_path / "home"))
    assert cache.cache_folder() == str(tmp_path / "home" / "onnx")
    monkeypatch.setattr(cache, "default_params_dir", lambda: str(blocker / "home"))
    with caplog.at_level("WARNING"):
        folder = cache.cache_folder()
    assert folder.startswith(tempfile.gettempdir()) and "set $NNABLA_LPIPS_CACHE_DIR" in caplog.text


def test_parameter_hashes_name_the_same_entries(params_dir, tmp_path):
    from metrics.lpips import LPIPS
    net = LPIPS("alex", params_dir=params_dir)
    hashes = cache.parameter_hashes(net)
    for kind in ("weights", "trunk-winograd", "head", "pairs-maps"):
        assert (cache.cache_path(net, kind, str(tmp_path), hashes)
                == cache.cache_path(net, kind, str(tmp_path)))
    net.parameters()["lin0_model_1_weight"].d *= 2
    assert (cache.cache_path(net, "head", str(tmp_path))
            != cache.cache_path(net, "head", str(tmp_path), hashes))


@pytest.mark.parametrize("edit", [b"# a comment\n", b'\n"""A new docstring."""\n'])
def test_comments_and_docstrings_keep_the_cache(params_dir, monkeypatch, tmp_path, edit):
    # Only code that builds graphs names the entries: a comment, a docstring or the layout
    # of trunks.py, or the tuning table's memory slopes, keep every user's cache.
    import dataclasses
    from metrics.lpips import trunks
    from metrics.lpips.engines import tuning
    net = Scorer("alex", params_dir=params_dir, backend="nnabla").net
    kinds = ("trunk", "head", "pairs-winograd", "weights")
    before = {kind: cache.cache_path(net, kind, str(tmp_path)) for kind in kinds}
    source = open(trunks.__file__, "rb").read()
    changed = tmp_path / "trunks.py"
    changed.write_bytes(source.replace(b'"""Feature trunks', b'"""The feature trunks', 1)
                        .replace(b"def alex_features(x):\n", b"def alex_features(x):  # ours\n", 1)
                        + edit)
    monkeypatch.setattr(trunks, "__file__", str(changed))
    monkeypatch.setitem(tuning.TUNING, "alex", dataclasses.replace(
        tuning.TUNING["alex"], bytes_per_pixel=(("winograd", 1), ("direct", 2), ("nnabla", 3)),
        pixels_per_pass=1 << 10, winograd_max_pixels=1))
    assert {kind: cache.cache_path(net, kind, str(tmp_path)) for kind in kinds} == before
    # What reaches a graph does name it: the Winograd tiles.
    monkeypatch.setitem(tuning.TUNING, "alex", dataclasses.replace(
        tuning.TUNING["alex"], winograd_tiles=((3, 4), (5, 2))))
    assert cache.cache_path(net, "trunk", str(tmp_path)) != before["trunk"]
    assert cache.cache_path(net, "head", str(tmp_path)) == before["head"]
