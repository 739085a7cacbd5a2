"""Makes tests/data/torch/: small checkpoints written by real torch.save, in the zip format
and the legacy format, with the values they hold, to test the torch-free readers.

Run once in the PyTorch venv of make_golden.py:
    /tmp/torchvenv/bin/python tests/golden/make_torch_files.py
"""
import collections
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "torch")


def main():
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    state = collections.OrderedDict([
        ("features.0.weight", torch.randn(2, 3, 3, 3)),
        ("features.0.bias", torch.randn(2)),
        ("transposed", base.t()),                 # non-contiguous view
        ("offset_view", base[1:3, 2:5]),          # view with a storage offset, shared storage
        ("long", torch.arange(5, dtype=torch.int64)),
        ("half", torch.randn(3, dtype=torch.float16)),
        ("param", torch.nn.Parameter(torch.randn(2, 2))),
        ("scalar", torch.tensor(3.5)),
    ])
    os.makedirs(OUT, exist_ok=True)
    torch.save(state, os.path.join(OUT, "small_zip.pth"))
    torch.save(state, os.path.join(OUT, "small_legacy.pth"), _use_new_zipfile_serialization=False)
    np.savez(os.path.join(OUT, "small_expected.npz"),
             **{k: v.detach().numpy() for k, v in state.items()})


if __name__ == "__main__":
    main()
