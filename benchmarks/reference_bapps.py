"""The reference's BAPPS evaluation loop, timed, for bench_evaluate.py; run by the Python given
as --reference-python (torch, torchvision, lpips 0.1.4). Prints one JSON line.

What runs is the loop of the reference's ``test_dataset_model.py --dataset_mode 2afc
--batch_size 50``: its TwoAFCDataset (PIL ``convert('RGB')``, ``Resize(64)``, ``ToTensor``,
``Normalize(0.5, 0.5)``, folders sorted) in a torch DataLoader with its default 4 workers,
``lpips.LPIPS`` called on (ref, p0) and (ref, p1) per batch, then ``score_2afc_dataset``'s
formula. The reference's dataset class is not in the pip package: ``TwoAFCFolder`` below does
what its ``data/dataset/twoafc_dataset.py`` does, step for step. With ``carrier``, the trunk
gets the real weights the way tests/golden/make_golden.py loads them, so the score can be
compared with ours; without, random weights (speed does not depend on them).
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision.transforms as transforms
from PIL import Image

import lpips

HERE = os.path.dirname(os.path.abspath(__file__))


class TwoAFCFolder(torch.utils.data.Dataset):
    def __init__(self, root, load_size=64):
        def listing(sub):
            folder = os.path.join(root, sub)
            return sorted(os.path.join(folder, f) for f in os.listdir(folder))
        self.ref, self.p0, self.p1 = listing("ref"), listing("p0"), listing("p1")
        self.judge = listing("judge")
        self.transform = transforms.Compose([
            transforms.Resize(load_size), transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

    def __getitem__(self, i):
        load = lambda p: self.transform(Image.open(p).convert("RGB"))  # noqa: E731
        return {"ref": load(self.ref[i]), "p0": load(self.p0[i]), "p1": load(self.p1[i]),
                "judge": torch.FloatTensor(np.load(self.judge[i]).reshape((1, 1, 1)))}

    def __len__(self):
        return len(self.p0)


def build(model, carrier):
    if carrier is None:
        return lpips.LPIPS(net=model, pnet_rand=True, verbose=False)
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "golden"))
    import make_golden
    return make_golden.build(model, "0.1", True, False, carrier)


def main(config):
    start = time.perf_counter()
    net = build(config["model"], config.get("carrier"))
    loader = torch.utils.data.DataLoader(TwoAFCFolder(config["folder"]), batch_size=50,
                                         shuffle=False, num_workers=4)
    loop_start = time.perf_counter()
    d0s, d1s, gts = [], [], []
    for data in loader:
        d0s += net.forward(data["ref"], data["p0"]).data.cpu().numpy().flatten().tolist()
        d1s += net.forward(data["ref"], data["p1"]).data.cpu().numpy().flatten().tolist()
        gts += data["judge"].cpu().numpy().flatten().tolist()
    loop = time.perf_counter() - loop_start
    d0s, d1s, gts = np.array(d0s), np.array(d1s), np.array(gts)
    scores = (d0s < d1s) * (1. - gts) + (d1s < d0s) * gts + (d1s == d0s) * .5
    print(json.dumps({"triplets": len(gts), "loop_s": loop, "setup_s": loop_start - start,
                      "score": float(np.mean(scores)), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
