# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""E-LPIPS' lin weight files (``weights/elpips/``, and the same files given to ``convert``), read
by the restricted unpickler. Both the store (which makes the ``elpips`` version's files from
them) and the converter read them here."""
import collections
import hashlib
import logging
import os

import numpy as np

from ..errors import InputProblem
from ..trunks import TRUNKS
from . import pickles, registry
from .registry import lin_name

logger = logging.getLogger(__name__)


class ConversionError(InputProblem, ValueError):
    """A source is missing, unreadable, or not the file it claims to be."""


def elpips_lins(source):
    """Lin layers from E-LPIPS' ``.npy`` files (a file, or a folder holding them directly or
    in ``elpips/``), read by the restricted unpickler: {(model, version): lins}. Their
    (1, 1, C, 1) kernels become NNabla's (1, C, 1, 1)."""
    names = {b.filename: key for key, b in registry.BUNDLED_LINS.items()}
    if os.path.isdir(source):
        paths = [os.path.join(folder, n) for folder in (source, os.path.join(source, "elpips"))
                 for n in names if os.path.isfile(os.path.join(folder, n))]
    elif os.path.basename(source) in names:
        paths = [source]
    else:
        raise ConversionError("{} is none of E-LPIPS' lin weight files ({})".format(
            source, ", ".join(names)))
    found = {}
    for path in paths:
        model, version = key = names[os.path.basename(path)]
        with open(path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != registry.BUNDLED_LINS[key].sha256:
            logger.warning("%s differs from the published E-LPIPS file (sha256); converting "
                           "it as given", path)
        try:
            table = pickles.load_npy_object(data)
            found[key] = collections.OrderedDict(
                (lin_name(i), np.asarray(table["lin{}.model.1.weight".format(i)],
                                         np.float32).transpose(3, 2, 0, 1))
                for i in range(len(TRUNKS[model].channels)))
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ConversionError("{} does not hold E-LPIPS lin weights for the {} model ({}: "
                                  "{})".format(path, model, type(e).__name__, e)) from None
    return found

