"""Finding, checking and downloading parameter files; downloads go to a local HTTP server."""
import logging
import os

import numpy as np
import pytest

from file_server import FileServer, route
from metrics.lpips import LPIPS
from metrics.lpips.weights import WeightsError, load_weights, registry
from metrics.lpips.weights import store as weights
from metrics.lpips.weights.store import read_h5, write_h5


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv(weights.PARAMS_DIR_ENV, raising=False)
    monkeypatch.delenv(registry.URL_BASE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_resolution_order(clean_env, monkeypatch):
    home_default = os.path.join(str(clean_env / "home"), "nnabla_data", "lpips")
    assert weights.resolve_params_dir() == home_default
    monkeypatch.setenv(weights.PARAMS_DIR_ENV, str(clean_env / "env"))
    assert weights.resolve_params_dir() == str(clean_env / "env")
    assert weights.resolve_params_dir(str(clean_env / "arg")) == str(clean_env / "arg")


def test_default_is_never_the_working_directory(clean_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert os.path.isabs(weights.resolve_params_dir())
    assert not weights.resolve_params_dir().startswith(os.path.join(str(tmp_path), "nnabla_data"))


def test_converted_files_match_the_registry_digests(params_dir):
    for (model, version), entry in registry.WEIGHTS.items():
        if entry.content_sha256:
            params = read_h5(os.path.join(params_dir, entry.filename))
            assert weights.content_digest(params) == entry.content_sha256, entry.filename


def test_official_layout_loads_with_nnabla(params_dir):
    import nnabla as nn
    nn.load_parameters(os.path.join(params_dir, "alex_with_LPIPS.h5"))
    loaded = nn.get_parameters(grad_only=False)
    assert loaded["conv0/conv/W"].shape == (64, 3, 11, 11)
    assert loaded["lin4_model_1_weight"].shape == (1, 256, 1, 1)


def _broken_copy(params_dir, tmp_path, edit):
    params = dict(read_h5(os.path.join(params_dir, "alex_with_LPIPS.h5")))
    edit(params)
    write_h5(str(tmp_path / "alex_with_LPIPS.h5"), params)
    return str(tmp_path)


@pytest.mark.parametrize("edit,message", [
    (lambda p: p.pop("conv8/conv/W"), r"missing conv8/conv/W \(256, 384, 3, 3\)"),
    (lambda p: p.update(extra=np.zeros(3, np.float32)), r"unexpected extra \(3,\)"),
    (lambda p: p.update({"lin0_model_1_weight": np.zeros((1, 32, 1, 1), np.float32)}),
     r"lin0_model_1_weight has shape \(1, 32, 1, 1\), expected \(1, 64, 1, 1\)"),
    (lambda p: p["conv0/conv/b"].__setitem__(0, np.nan), "conv0/conv/b holds non-finite"),
])
def test_file_that_does_not_fit_is_rejected(params_dir, tmp_path, edit, message):
    folder = _broken_copy(params_dir, tmp_path, edit)
    with pytest.raises(WeightsError, match=message):
        LPIPS("alex", params_dir=folder)


def test_loaded_weights_are_checked_for_each_use_and_never_shared(params_dir, tmp_path):
    folder = _broken_copy(params_dir, tmp_path, lambda p: p.pop("lin2_model_1_weight"))
    trunk_only = load_weights("alex", "0.1", folder, lpips=False)  # fine without lin layers
    assert "conv0/conv/W" in trunk_only
    with pytest.raises(WeightsError, match="missing lin2_model_1_weight"):
        load_weights("alex", "0.1", folder, lpips=True)  # the same cached file, now checked
    trunk_only.clear()
    assert "conv0/conv/W" in load_weights("alex", "0.1", folder, lpips=False)
    mine = load_weights("alex", "0.1", folder, lpips=False)["conv0/conv/W"]
    first = mine.copy()
    mine[...] = 0  # the caller's own copy: the next caller reads the file's values
    np.testing.assert_array_equal(load_weights("alex", "0.1", folder, lpips=False)["conv0/conv/W"],
                                  first)


def test_other_values_are_loaded_with_a_warning(params_dir, tmp_path, caplog):
    folder = _broken_copy(params_dir, tmp_path, lambda p: p["conv0/conv/b"].__setitem__(0, 1.0))
    with caplog.at_level(logging.WARNING, logger="metrics.lpips.weights"):
        load_weights("alex", "0.1", folder)
    assert "other values" in caplog.text


def test_corrupt_file_is_named(tmp_path):
    (tmp_path / "alex_with_LPIPS.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(WeightsError, match="not a readable NNabla parameter file"):
        load_weights("alex", "0.1", str(tmp_path))


def test_unpublished_file_explains_offline_conversion(tmp_path):
    with pytest.raises(WeightsError, match="metrics.lpips.convert"):
        load_weights("squeeze", "0.1", str(tmp_path))


def test_missing_file_names_the_folder_and_the_original_module_s_copy(tmp_path, monkeypatch,
                                                                      clean_env):
    name = registry.get_weight_file("squeeze", "0.1").filename
    monkeypatch.chdir(str(tmp_path))
    chosen = tmp_path / "empty"
    with pytest.raises(WeightsError, match="empty .from the params_dir argument.* does not exist"):
        load_weights("squeeze", "0.1", str(chosen))  # a typo: no folder made, no download
    assert not chosen.exists()
    chosen.mkdir()
    with pytest.raises(WeightsError) as plain:
        load_weights("squeeze", "0.1", str(chosen))
    assert "Looked in {}, the folder chosen by the params_dir argument".format(chosen) in str(plain.value)
    assert "make setup" in str(plain.value)  # how to make the file without network
    # The original module's graph API kept its files in ./converted_weights: named, not read.
    (tmp_path / "converted_weights").mkdir()
    (tmp_path / "converted_weights" / name).write_bytes(b"")
    with pytest.raises(WeightsError) as hinted:
        load_weights("squeeze", "0.1", str(chosen))
    message = str(hinted.value)
    assert str(tmp_path / "converted_weights" / name) in message
    assert "--params-dir {}".format(tmp_path / "converted_weights") in message
    package = os.path.dirname(os.path.abspath(weights.__file__))
    assert weights.original_locations(name)[1] == os.path.join(os.path.dirname(package), name)


@pytest.fixture
def server(monkeypatch):
    with FileServer() as files:
        base = files.url("/lpips")
        monkeypatch.setenv(registry.URL_BASE_ENV, base)
        yield files.routes, base


def test_download_success(server, params_dir, tmp_path):
    routes, _ = server
    with open(os.path.join(params_dir, "alex_with_LPIPS.h5"), "rb") as f:
        routes["/lpips/alex_with_LPIPS.h5"] = route(f.read())
    cache = tmp_path / "cache"
    cache.mkdir()
    net = LPIPS("alex", params_dir=str(cache))
    assert os.listdir(str(cache)) == ["alex_with_LPIPS.h5"]
    assert net.parameters()["conv0/conv/W"].shape == (64, 3, 11, 11)


@pytest.mark.parametrize("case", ["404", "truncated", "wrong content", "offline"])
def test_failed_download_leaves_nothing(server, params_dir, tmp_path, monkeypatch, case):
    routes, base = server
    with open(os.path.join(params_dir, "alex_with_LPIPS.h5"), "rb") as f:
        good = f.read()
    if case == "truncated":
        routes["/lpips/alex_with_LPIPS.h5"] = route(good[:len(good) // 2], declared=len(good))
    elif case == "wrong content":
        routes["/lpips/alex_with_LPIPS.h5"] = route(b"<html>login page</html>")
    elif case == "offline":
        monkeypatch.setenv(registry.URL_BASE_ENV, "http://127.0.0.1:9/lpips")  # nothing listens
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(WeightsError, match="download failed.*make setup") as failed:
        load_weights("alex", "0.1", str(cache))
    assert ".part" not in str(failed.value)  # no temporary file named: it is gone
    assert os.listdir(str(cache)) == []
    # A later run with a working server fetches the right file, not a leftover.
    routes["/lpips/alex_with_LPIPS.h5"] = route(good)
    monkeypatch.setenv(registry.URL_BASE_ENV, base)
    assert load_weights("alex", "0.1", str(cache))["conv0/conv/W"].shape == (64, 3, 11, 11)
