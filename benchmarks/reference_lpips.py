"""Times the reference PyTorch LPIPS (pip lpips 0.1.4) for bench_lpips.py; run by the Python
given as --reference-python (it needs torch, torchvision, lpips and, for the folder script,
opencv-python-headless, which lpips.load_image uses). Prints one JSON line.

Trunk weights are random (pnet_rand=True: torchvision cannot download here); speed does not
depend on them. Inputs are the same seeded random images bench_lpips.py gives our code.
"""
import json
import os
import resource
import sys
import time

import torch

import lpips
from timing import seeded_images, timed


def images(n, size, seed):
    return torch.from_numpy(seeded_images(n, size, seed))


def directory_script(model, dir0, dir1):
    """The loop of the reference's lpips_2dirs.py: one pair per forward, no batching."""
    loss_fn = lpips.LPIPS(net=model, pnet_rand=True, verbose=False)
    start = time.perf_counter()
    n = 0
    for name in os.listdir(dir0):
        if os.path.exists(os.path.join(dir1, name)):
            img0 = lpips.im2tensor(lpips.load_image(os.path.join(dir0, name)))
            img1 = lpips.im2tensor(lpips.load_image(os.path.join(dir1, name)))
            loss_fn.forward(img0, img1)
            n += 1
    return n / (time.perf_counter() - start)


def main(config):
    torch.set_grad_enabled(config["mode"] == "dirs")  # the folder script keeps autograd on
    if config["mode"] == "dirs":
        rate = directory_script(config["model"], config["dir0"], config["dir1"])
    else:
        net = lpips.LPIPS(net=config["model"], pnet_rand=True, verbose=False).eval()
        n, size = config["batch"], config["size"]
        ref, p0, p1 = (images(n, size, seed) for seed in (1, 2, 3))
        if config["mode"] == "pairs":
            rate = timed(lambda: net(ref, p0), n, config["seconds"])
        else:  # 2afc: the reference scores (ref, p0) and (ref, p1)
            rate = timed(lambda: (net(ref, p0), net(ref, p1)), n, config["seconds"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"per_s": rate, "peak_mb": peak, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
