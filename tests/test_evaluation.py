"""BAPPS evaluation against the reference: the 2AFC scores, JND mAPs and distances of
tests/data/golden/bapps.json (made by tests/golden/make_bapps_golden.py with pip lpips 0.1.4
on the fixture of tests/golden/make_bapps_fixture.py)."""
import json
import os

import numpy as np
import pytest

from conftest import DATA
from metrics.lpips.evaluation import bapps
from metrics.lpips.evaluation.runner import Distance, evaluate

GOLDEN = json.load(open(os.path.join(DATA, "golden", "bapps.json")))["results"]
BAPPS = os.path.join(DATA, "bapps")
METRICS = sorted({r["metric"] for r in GOLDEN})


def distance_for(name, params_dir):
    metric, rest = name.split("-", 1)
    if metric in ("lpips", "baseline"):
        return Distance(metric, model=rest, params_dir=params_dir)
    return Distance(metric, colorspace=rest)


@pytest.mark.heavy
@pytest.mark.parametrize("name", METRICS)
def test_scores_match_the_reference(name, params_dir):
    distance = distance_for(name, params_dir)
    for record in (r for r in GOLDEN if r["metric"] == name):
        judged = bapps.read_folder(os.path.join(BAPPS, record["mode"], record["dataset"]),
                                   record["mode"], name=record["dataset"])
        ours = evaluate(judged, distance, batch_size=7)  # several batches
        where = "{} {} {}".format(name, record["mode"], record["dataset"])
        assert ours["count"] == record["count"], where
        assert ours["score"] == pytest.approx(record["score"], abs=1e-4), where
        for key in ("d0", "d1", "d"):
            if key in record:
                expected = np.array(record[key])
                np.testing.assert_allclose(ours[key], expected, rtol=2e-5, atol=2e-6, err_msg=where)


def _pillow_patch(path):
    """What the reference's loader does: Pillow decodes, convert('RGB'), bilinear short side 64."""
    from PIL import Image
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        new = (64, int(64 * h / w)) if w <= h else (int(64 * w / h), 64)
        return np.asarray(image.resize(new, Image.BILINEAR))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "I;16", "RGB+tRNS"])
def test_patches_are_pillows_pixels_for_every_png_kind(tmp_path, mode):
    from PIL import Image
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (90, 70), dtype=np.uint16))
    elif mode == "RGB+tRNS":
        image = Image.fromarray(rgb)
        image.info["transparency"] = tuple(int(v) for v in rgb[0, 0])
    else:
        image = Image.fromarray(rgb).convert(mode)
    path = str(tmp_path / "patch.png")
    image.save(path, transparency=image.info["transparency"]) if "transparency" in image.info \
        else image.save(path)
    patch = bapps.load_patch(path)
    assert patch.shape == (82, 64, 3) and patch.dtype == np.uint8
    np.testing.assert_array_equal(patch, _pillow_patch(path))
