"""A minimal writer of PyTorch's zip checkpoint format, for tests only: it lets the suite make
a full torchvision-style SqueezeNet checkpoint without torch. The project's reader, which
reads it back, is checked against files written by real torch.save (tests/data/torch/)."""
import contextlib
import io
import pickle
import sys
import types
import zipfile

from random_trunk import random_parameter


@contextlib.contextmanager
def _fake_torch():
    """Importable stand-ins named torch.FloatStorage and torch._utils._rebuild_tensor_v2, so that
    pickle writes exactly the globals a real checkpoint holds."""
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage(object):
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils, utils._rebuild_tensor_v2 = FloatStorage, utils, _rebuild_tensor_v2
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class _Storage(object):
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class _Tensor(object):
    def __init__(self, rebuild, storage, shape):
        self.rebuild, self.storage, self.shape = rebuild, storage, shape

    def __reduce__(self):
        stride = [1] * len(self.shape)
        for i in range(len(self.shape) - 2, -1, -1):
            stride[i] = stride[i + 1] * self.shape[i + 1]
        return (self.rebuild, (self.storage, 0, tuple(self.shape), tuple(stride), False,
                               __import__("collections").OrderedDict()))


def write_torch_zip(path, arrays, declared_shapes=None):
    """Writes ``arrays`` (name -> float32 array) as a torch zip state dict; ``declared_shapes``
    (name -> shape) makes the file claim other shapes than the data it holds."""
    declared_shapes = declared_shapes or {}
    import collections
    with _fake_torch() as torch:
        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _Storage):
                    return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
                return None

        state, blobs = collections.OrderedDict(), {}
        for i, (name, value) in enumerate(arrays.items()):
            blobs[str(i)] = value.astype("<f4").tobytes()
            state[name] = _Tensor(torch._utils._rebuild_tensor_v2, _Storage(str(i), value.size),
                                  declared_shapes.get(name, value.shape))
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        for key, blob in blobs.items():
            z.writestr("archive/data/" + key, blob)
    return path


# torchvision SqueezeNet 1.1 features: index -> (in, squeeze, expand) of each Fire module.
_FIRES = {3: (64, 16, 64), 4: (128, 16, 64), 6: (128, 32, 128), 7: (256, 32, 128),
          9: (256, 48, 192), 10: (384, 48, 192), 11: (384, 64, 256), 12: (512, 64, 256)}


def squeezenet_state():
    """torchvision key -> random value, from the official names of random_trunk.py."""
    import collections
    state = collections.OrderedDict()

    def put(tv_prefix, official_scope, shape):
        state[tv_prefix + ".weight"] = random_parameter(official_scope + "/conv/W", shape)
        state[tv_prefix + ".bias"] = random_parameter(official_scope + "/conv/b", (shape[0],))

    put("features.0", "conv0", (64, 3, 3, 3))
    for i, (cin, s, e) in _FIRES.items():
        put("features.{}.squeeze".format(i), "fire{}/squeeze".format(i), (s, cin, 1, 1))
        put("features.{}.expand1x1".format(i), "fire{}/expand1x1".format(i), (e, s, 1, 1))
        put("features.{}.expand3x3".format(i), "fire{}/expand3x3".format(i), (e, s, 3, 3))
    state["classifier.1.weight"] = random_parameter("classifier", (1000, 512, 1, 1))
    state["classifier.1.bias"] = random_parameter("classifier_b", (1000,))
    return state


def write_squeezenet_checkpoint(path):
    return write_torch_zip(path, squeezenet_state())
