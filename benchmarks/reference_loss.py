"""Times the reference PyTorch LPIPS (pip lpips 0.1.4) as a loss for bench_loss.py; run by
the Python given as --reference-python (torch, torchvision, lpips). Prints one JSON line.

Trunk weights are random (pnet_rand=True: torchvision cannot download here); speed does not
depend on them. Modes:

* ``step``: forward of d(x, target) and the gradient with respect to x (weights frozen), on
  the seeded images bench_loss.py gives our code;
* ``match``: the loop of the reference's ``perceptual_loss.py`` (Adam at 1e-3 on a [-1, 1]
  image pulled towards a reference, clamped after each step) for ``steps`` steps.
"""
import json
import resource
import sys
import time

import torch

import lpips
from timing import seeded_images, timed


def main(config):
    torch.set_num_threads(config.get("threads") or torch.get_num_threads())
    net = lpips.LPIPS(net=config["model"], pnet_rand=True, verbose=False).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    n, size = config["batch"], config["size"]
    x = torch.from_numpy(seeded_images(n, size, 1)).requires_grad_(True)
    target = torch.from_numpy(seeded_images(n, size, 2))
    if config["mode"] == "step":
        def step():
            x.grad = None
            net(x, target).sum().backward()
        rate = timed(step, 1, config["seconds"])
    else:
        optimizer = torch.optim.Adam([x], lr=1e-3, betas=(0.9, 0.999))
        start = time.perf_counter()
        for _ in range(config["steps"]):
            dist = net.forward(x, target)
            optimizer.zero_grad()
            dist.sum().backward()
            optimizer.step()
            x.data = torch.clamp(x.data, -1, 1)
        rate = config["steps"] / (time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"per_s": rate, "peak_mb": peak}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
