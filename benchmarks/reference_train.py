"""The reference's training loop, timed, for bench_train.py; run by the Python given as
--reference-python (torch, torchvision, lpips 0.1.4). Prints one JSON line.

What runs is ``train.py``'s loop for lin mode on AlexNet: ``lpips.Trainer`` initialised as it
does (``is_train=True``: lin layers with dropout, the ranking network, Adam(1e-4, 0.5)), its
TwoAFCDataset (as reference_bapps.py) in a shuffled torch DataLoader with its 4 workers,
batch 50, ``set_input`` and ``optimize_parameters`` per batch, for one epoch. The trunk's
weights are random (``pnet_rand``: torchvision cannot download offline; speed does not depend
on them).
"""
import json
import sys
import time

import torch

import lpips
from reference_bapps import TwoAFCFolder


def main(config):
    trainer = lpips.Trainer()
    trainer.initialize(model="lpips", net=config["model"], pnet_rand=True, use_gpu=False,
                       is_train=True, lr=1e-4, beta1=0.5)
    loader = torch.utils.data.DataLoader(TwoAFCFolder(config["folder"]), batch_size=50,
                                         shuffle=True, num_workers=4)
    start = time.perf_counter()
    count = 0
    for data in loader:
        trainer.set_input(data)
        trainer.optimize_parameters()
        count += len(data["judge"])
    print(json.dumps({"triplets": count, "loop_s": time.perf_counter() - start,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
