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
