"""The training loop and command: checkpoints that load as weights, resuming, interruption."""
import csv
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import COMMAND_ENV as ENV, command_line, DATA, run_command
from metrics.lpips import LPIPS
from metrics.lpips.evaluation import bapps
from metrics.lpips.training import checkpoint
from metrics.lpips.training.loop import learning_rate, train
from metrics.lpips.training.trainer import Trainer

BAPPS = os.path.join(DATA, "bapps")
TRAIN = bapps.read_folder(os.path.join(BAPPS, "2afc", "val", "mixed"), "2afc", "val/mixed")


def _train(*args):
    return run_command("train", *args)


def _csv(tmp_path):
    """The training set as a judgment CSV (paths relative to it)."""
    path = tmp_path / "judged.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ref", "p0", "p1", "judge"])
        for item, judge in zip(TRAIN.items, TRAIN.judgments):
            writer.writerow([os.path.relpath(p, tmp_path) for p in item] + [judge])
    return path


def _lins(path):
    with h5py.File(path, "r") as f:
        return {k: np.asarray(f[k]) for k in f if k.startswith("lin")}


def test_the_learning_rate_schedule_is_the_references():
    # train.py: lr through epoch nepoch + 1, then lowered by lr / nepoch_decay per epoch
    assert [learning_rate(1.0, e, 2, 4) for e in range(1, 7)] == [1, 1, 1, 0.75, 0.5, 0.25]
    assert learning_rate(0.5, 3, 3, 0) == 0.5


def test_each_schedules_rates_per_epoch():
    cosine = [learning_rate(1.0, e, 2, 4, "cosine") for e in range(1, 7)]
    np.testing.assert_allclose(cosine, [1, 1, 1, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5,
                                        0.5 + 0.5 * np.cos(3 * np.pi / 4)], rtol=1e-15)
    validation = [0.5, 0.6, 0.55, 0.58, 0.7, 0.6, 0.6, 0.6, 0.6]
    log = [{"epoch": k + 1, "validation": v} for k, v in enumerate(validation)]
    plateau = [learning_rate(1.0, e, 2, 4, "plateau", log[:e - 1]) for e in range(1, 11)]
    assert plateau == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_the_plateau_schedule_follows_the_validation(params_dir, tmp_path):
    scores = iter([0.5, 0.4, 0.3, 0.2])
    log = train(Trainer("alex", params_dir=params_dir, seed=3), TRAIN, str(tmp_path / "out"),
                epochs=4, epochs_decay=0, batch_size=6, seed=3, schedule="plateau",
                evaluate=lambda out: {"2afc a": next(scores)})
    base = log[0]["lr"]
    assert [row["lr"] for row in log] == [base, base, base, base / 2]
    result = _train("--dataroot", BAPPS, "--datasets", "val/mixed", "--out", tmp_path / "x",
                    "--lr-schedule", "plateau")
    assert result.returncode == 2 and "needs --eval-datasets" in result.stderr


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(params_dir, tmp_path):
    whole = Trainer("alex", params_dir=params_dir, seed=3)
    log = train(whole, TRAIN, str(tmp_path / "whole"), epochs=1, epochs_decay=2, batch_size=6,
                seed=3, settings={"k": 1})
    assert [row["epoch"] for row in log] == [1, 2, 3]

    class Stop(Exception):
        pass

    def stop_in_epoch_two(done, count):
        if stop_in_epoch_two.epoch == 2 and done == 2:
            raise Stop()
    stop_in_epoch_two.epoch = 1

    def next_epoch(row):
        stop_in_epoch_two.epoch = row["epoch"] + 1
    part = Trainer("alex", params_dir=params_dir, seed=3)
    out = str(tmp_path / "part")
    with pytest.raises(Stop):
        train(part, TRAIN, out, epochs=1, epochs_decay=2, batch_size=6, seed=3,
              settings={"k": 1}, on_batch=stop_in_epoch_two, on_epoch=next_epoch)
    # killed mid-epoch: the previous epoch's checkpoint is whole and loads
    assert os.path.basename(checkpoint.latest(out)) == "epoch_001"
    LPIPS("alex", params_dir=out)
    resumed = Trainer("alex", params_dir=params_dir, seed=99)  # its start is overwritten
    log2 = train(resumed, TRAIN, out, epochs=1, epochs_decay=2, batch_size=6, seed=3,
                 settings={"k": 1}, resume=True)
    assert [row["epoch"] for row in log2] == [1, 2, 3]
    assert log2[-1]["loss"] == pytest.approx(log[-1]["loss"], rel=1e-6)
    a, b = _lins(checkpoint.weights_path(str(tmp_path / "whole"), "alex")), _lins(
        checkpoint.weights_path(out, "alex"))
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-9)
    assert os.listdir(os.path.join(out, checkpoint.FOLDER)) == ["epoch_003"]
    with pytest.raises(checkpoint.CheckpointError, match="k: 2 here, 1 there"):
        train(Trainer("alex", params_dir=params_dir), TRAIN, out, epochs=1, epochs_decay=2,
              batch_size=6, seed=3, settings={"k": 2}, resume=True)


@pytest.mark.heavy
def test_the_train_command_writes_weights_that_score(params_dir, tmp_path):
    out = tmp_path / "out"
    common = ["--dataroot", BAPPS, "--datasets", "val/mixed", "--params-dir", params_dir,
              "--out", out, "--batch-size", "8", "-q"]
    result = _train(*common, "--epochs", "1", "--epochs-decay", "1", "--eval-datasets",
                    "val/other")
    assert result.returncode == 0, result.stderr
    lins = _lins(out / "alex_with_LPIPS.h5")
    assert len(lins) == 5 and all(v.min() >= 0 for v in lins.values())
    pretrained = _lins(os.path.join(params_dir, "alex_with_LPIPS.h5"))
    assert not np.allclose(lins["lin0_model_1_weight"], pretrained["lin0_model_1_weight"])
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert 0 <= float(rows[-1]["2afc val/other"]) <= 1
    scored = subprocess.run(
        command_line("evaluate", "--dataroot", BAPPS, "--datasets",
         "val/other", "--params-dir", str(out), "--format", "json"),
        capture_output=True, text=True, env=ENV)
    assert scored.returncode == 0, scored.stderr
    assert '"score"' in scored.stdout
    assert "other values than the weights" not in scored.stderr  # marked as trained
    pair = [os.path.join(BAPPS, "2afc", "val", "other", sub, "000000.png") for sub in ("ref", "p0")]
    computed = run_command("compute", *pair,
                               "--params-dir", str(out), "--format", "csv")
    assert computed.returncode == 0, computed.stderr
    assert float(computed.stdout.splitlines()[1].split(",")[2]) > 0
    again = _train(*common)
    assert again.returncode == 2 and "--resume" in again.stderr
    other = _train(*common, "--resume", "--lr", "0.001")
    assert other.returncode == 2 and "lr: 0.001 here, 0.01 there" in other.stderr
    # Settings the arguments say are checked before any data is read: a data set that does
    # not exist would be an input error (3) if it were read first.
    longer = _train("--dataroot", BAPPS, "--datasets", "val/none", "--out", out, "--params-dir",
                    params_dir, "--resume", "--batch-size", "9", "-q")
    assert longer.returncode == 2 and "batch_size: 9 here" in longer.stderr, longer.stderr
    fast = _train("--csv", _csv(tmp_path), "--params-dir", params_dir, "--out", tmp_path / "fast",
                  "--precompute", "--epochs", "2", "--epochs-decay", "0", "-q")
    assert fast.returncode == 0, fast.stderr
    assert len(_lins(tmp_path / "fast" / "alex_with_LPIPS.h5")) == 5
    missing = _train("--dataroot", BAPPS, "--datasets", "val/none", "--out", tmp_path / "x",
                     "--params-dir", params_dir, "-q")
    assert missing.returncode == 3 and "val/none" in missing.stderr


def test_precomputed_terms_train_as_the_images_do_without_dropout(params_dir, tmp_path):
    from metrics.lpips.training.loop import precompute_terms
    from metrics.lpips.training.precompute import TermMaker
    for backend in ("nnabla", "onnxruntime"):
        terms = precompute_terms(TRAIN, TermMaker("alex", params_dir, backend), batch_size=5)
        assert terms[0].shape == (len(TRAIN.items), 64 + 192 + 384 + 256 + 256)
        slow = Trainer("alex", params_dir=params_dir, dropout=False, seed=4)
        fast = Trainer("alex", params_dir=params_dir, dropout=False, seed=4)
        log_slow = train(slow, TRAIN, str(tmp_path / ("slow" + backend)), epochs=2,
                         epochs_decay=1, batch_size=6, seed=1)
        log_fast = train(fast, TRAIN, str(tmp_path / ("fast" + backend)), epochs=2,
                         epochs_decay=1, batch_size=6, seed=1, terms=terms)
        for a, b in zip(log_slow, log_fast):
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        for name, var in slow.parameters().items():
            np.testing.assert_allclose(fast.parameters()[name].d, var.d, rtol=1e-4, atol=1e-6,
                                       err_msg=name)
    with pytest.raises(ValueError, match="dropout"):
        Trainer("alex", params_dir=params_dir).step_terms(terms[0][:2], terms[1][:2], [0, 1])


def _agreement(*args):
    import json
    result = run_command("evaluate", *[str(a) for a in args]
                            + ["--format", "json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["results"][0]["score"]


@pytest.mark.heavy
def test_the_default_recipe_learns_a_planted_metric(params_dir, tmp_path):
    import planted
    root = tmp_path / "bapps"
    planted.make(str(root), params_dir)
    out = tmp_path / "trained"
    result = _train("--dataroot", root, "--datasets", "train/planted", "--model", "alex",
                    "--mode", "lin", "--out", out, "--params-dir", params_dir, "-q")
    assert result.returncode == 0, result.stderr
    common = ["--dataroot", root, "--datasets", "val/planted", "--model", "alex"]
    trained = _agreement(*common, "--params-dir", out)
    uncalibrated = _agreement(*common, "--params-dir", params_dir, "--metric", "baseline")
    pretrained = _agreement(*common, "--params-dir", params_dir)
    print("held-out agreement: trained {:.3f}, uncalibrated {:.3f}, pretrained {:.3f}".format(
        trained, uncalibrated, pretrained))
    assert trained >= 0.75 and trained > uncalibrated + 0.1 and trained > pretrained + 0.1


@pytest.mark.heavy
def test_tune_mode_writes_the_trained_trunk(params_dir, tmp_path):
    out = tmp_path / "tuned"
    common = ["--dataroot", BAPPS, "--datasets", "val/mixed", "--params-dir", params_dir,
              "--out", out, "-q", "--mode", "tune"]
    refused = _train(*common)
    assert refused.returncode == 2 and "--recipe reference" in refused.stderr
    # Validation scores each epoch's whole network without exporting it: an epoch's new trunk
    # would leave its weights in the export cache.
    cache = tmp_path / "onnx"
    result = run_command("train", *common, "--recipe", "reference", "--epochs", "2",
                         "--epochs-decay", "0", "--batch-size", "8", "--lr", "1e-3",
                         "--eval-datasets", "val/other",
                         env=dict(ENV, NNABLA_LPIPS_CACHE_DIR=str(cache)))
    assert result.returncode == 0, result.stderr
    assert not cache.exists() or not os.listdir(str(cache))
    with open(out / "log.csv") as f:
        assert [0 <= float(row["2afc val/other"]) <= 1 for row in csv.DictReader(f)] == [True] * 2
    with h5py.File(out / "alex_with_LPIPS.h5", "r") as f, \
            h5py.File(os.path.join(params_dir, "alex_with_LPIPS.h5"), "r") as g:
        assert not np.allclose(f["conv0/conv/W"][()], g["conv0/conv/W"][()])
    net = LPIPS("alex", params_dir=str(out))
    with h5py.File(out / "alex_with_LPIPS.h5", "r") as f:
        np.testing.assert_array_equal(net.parameters()["conv0/conv/W"].d, f["conv0/conv/W"][()])


@pytest.mark.heavy
@pytest.mark.parametrize("recipe", ["reference", "fast"])
def test_two_processes_train_as_one(params_dir, tmp_path, recipe):
    from test_mpi import MPIEXEC
    args = ["-m", "metrics.lpips.train", "--dataroot", BAPPS, "--datasets", "val/mixed",
            "--params-dir", params_dir, "--recipe", recipe, "--epochs", "1",
            "--epochs-decay", "1", "--batch-size", "7", "-q"]
    one = subprocess.run([sys.executable] + args + ["--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=ENV)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-n", "2",
                          sys.executable] + args + ["--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=ENV, timeout=600)
    assert two.returncode == 0, two.stderr
    a, b = _lins(tmp_path / "one" / "alex_with_LPIPS.h5"), _lins(tmp_path / "two" / "alex_with_LPIPS.h5")
    # Adam's step is about the learning rate whatever the gradient's size: a weight whose
    # gradient is near 0 may step differently on sums in another order (seen: 1 of 1152 at
    # the fast recipe's lr 1e-2, 4e-4 apart). Nearly all agree to float precision, every one
    # within a tenth of a step.
    lr = 1e-2 if recipe == "fast" else 1e-4
    tight = np.concatenate([np.isclose(b[n], a[n], rtol=1e-5, atol=1e-7).ravel() for n in a])
    assert tight.mean() > 0.99
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=0.1 * lr, err_msg=name)
    with open(tmp_path / "one" / "log.csv") as f, open(tmp_path / "two" / "log.csv") as g:
        rows_one, rows_two = list(csv.DictReader(f)), list(csv.DictReader(g))
    for r1, r2 in zip(rows_one, rows_two):
        assert float(r2["loss"]) == pytest.approx(float(r1["loss"]), rel=1e-5)
        assert float(r2["accuracy"]) == pytest.approx(float(r1["accuracy"]))


def test_validation_leaves_no_file_per_epoch_and_scores_as_evaluate(params_dir, tmp_path):
    # Lin mode validates on the held-out triplets' channel terms, computed once: more epochs
    # add nothing to the export cache, and the logged score is evaluate's of that epoch.
    from metrics.lpips.evaluation.runner import Distance, evaluate
    cache = tmp_path / "onnx"
    env = dict(ENV, NNABLA_LPIPS_CACHE_DIR=str(cache))
    cached = []
    for epochs in ("1", "3"):
        out = tmp_path / "out{}".format(epochs)
        result = run_command("train", "--dataroot", BAPPS, "--datasets", "val/mixed",
                             "--params-dir", params_dir, "--out", out, "--batch-size", "8", "-q",
                             "--epochs", epochs, "--epochs-decay", "1", "--eval-datasets",
                             "val/other", env=env)
        assert result.returncode == 0, result.stderr
        cached.append(sorted(os.listdir(str(cache))))
    assert cached[0] == cached[1] and cached[0]
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    held_out = bapps.read_folder(os.path.join(BAPPS, "2afc", "val", "other"), "2afc")
    want = evaluate(held_out, Distance("lpips", "alex", params_dir=str(out)))["score"]
    assert float(rows[-1]["2afc val/other"]) == pytest.approx(want, abs=1e-12)


def test_the_best_epoch_is_kept_and_patience_stops_where_the_rule_says(params_dir, tmp_path):
    # Scripted validation scores: best at epoch 2, then three epochs without beating it
    # (epoch 4 ties it: a tie is no improvement), so patience 3 stops after epoch 5, not 4.
    scripted = [0.5, 0.7, 0.6, 0.7, 0.65, 0.9, 0.95]
    weights = {}

    def evaluate(out):
        epoch = len(weights) + 1
        weights[epoch] = _lins(checkpoint.weights_path(out, "alex"))
        return {"2afc a": scripted[epoch - 1], "2afc b": scripted[epoch - 1]}
    out = str(tmp_path / "out")
    log = train(Trainer("alex", params_dir=params_dir, seed=3), TRAIN, out, epochs=4,
                epochs_decay=3, batch_size=6, seed=3, evaluate=evaluate, patience=3)
    assert [row["epoch"] for row in log] == [1, 2, 3, 4, 5]
    assert [row["validation"] for row in log] == scripted[:5]
    best = _lins(checkpoint.weights_path(os.path.join(out, "best"), "alex"))
    assert not np.array_equal(weights[2]["lin0_model_1_weight"], weights[5]["lin0_model_1_weight"])
    for name in best:
        np.testing.assert_array_equal(best[name], weights[2][name])
    # Resuming a run that stopped early trains nothing more.
    again = train(Trainer("alex", params_dir=params_dir, seed=3), TRAIN, out, epochs=4,
                  epochs_decay=3, batch_size=6, seed=3, evaluate=evaluate, patience=3,
                  resume=True)
    assert len(again) == 5 and len(weights) == 5
    # The best epoch's folder is weights that compute loads.
    pair = [os.path.join(BAPPS, "2afc", "val", "other", sub, "000000.png") for sub in ("ref", "p0")]
    computed = run_command("compute", *pair, "--params-dir", os.path.join(out, "best"))
    assert computed.returncode == 0, computed.stderr
    assert "other values than the weights" not in computed.stderr  # marked as trained


def test_without_patience_every_epoch_runs_and_the_best_is_kept(params_dir, tmp_path):
    scores = iter([0.4, 0.3, 0.8])
    out = str(tmp_path / "out")
    log = train(Trainer("alex", params_dir=params_dir, seed=3), TRAIN, out, epochs=2,
                epochs_decay=1, batch_size=6, seed=3, evaluate=lambda out: {"2afc a": next(scores)})
    assert [row["validation"] for row in log] == [0.4, 0.3, 0.8]
    np.testing.assert_array_equal(
        _lins(checkpoint.weights_path(os.path.join(out, "best"), "alex"))["lin0_model_1_weight"],
        _lins(checkpoint.weights_path(out, "alex"))["lin0_model_1_weight"])
    result = _train("--dataroot", BAPPS, "--datasets", "val/mixed", "--out", tmp_path / "x",
                    "--patience", "2")
    assert result.returncode == 2 and "--patience" in result.stderr


def test_extending_a_finished_run_equals_one_longer_run(params_dir, tmp_path, caplog):
    longer = str(tmp_path / "longer")
    log = train(Trainer("alex", params_dir=params_dir, seed=3), TRAIN, longer, epochs=4,
                epochs_decay=0, batch_size=6, seed=3)
    out = str(tmp_path / "extended")
    train(Trainer("alex", params_dir=params_dir, seed=3), TRAIN, out, epochs=2, epochs_decay=0,
          batch_size=6, seed=3)
    with caplog.at_level("WARNING"):
        extended = train(Trainer("alex", params_dir=params_dir, seed=99), TRAIN, out, epochs=4,
                         epochs_decay=0, batch_size=6, seed=3, resume=True)
    assert "other learning rates" not in caplog.text  # the full rate throughout: the same run
    assert [row["epoch"] for row in extended] == [1, 2, 3, 4]
    assert extended[-1]["loss"] == pytest.approx(log[-1]["loss"], rel=1e-6)
    a, b = _lins(checkpoint.weights_path(longer, "alex")), _lins(checkpoint.weights_path(out, "alex"))
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-9)
    with open(os.path.join(out, "monitor", "loss.series.txt")) as f:  # the series go on
        assert [line.split()[0] for line in f] == ["1", "2", "3", "4"]
    # Extending a run whose rate had begun to fall says the epochs done differ from the plan.
    with caplog.at_level("WARNING"):
        train(Trainer("alex", params_dir=params_dir), TRAIN, out, epochs=4, epochs_decay=2,
              batch_size=6, seed=3, resume=True)
        caplog.clear()
        train(Trainer("alex", params_dir=params_dir), TRAIN, out, epochs=2, epochs_decay=6,
              batch_size=6, seed=3, resume=True)
    assert "epochs 4-5 ran at other learning rates" in caplog.text  # 6 ran at half, as planned
    with pytest.raises(checkpoint.CheckpointError, match="trained 8 epochs already"):
        train(Trainer("alex", params_dir=params_dir), TRAIN, out, epochs=2, epochs_decay=2,
              batch_size=6, seed=3, resume=True)


def test_the_held_out_split_is_disjoint_seeded_and_validated(params_dir, tmp_path):
    from metrics.lpips.training import validation
    kept, held = validation.split(TRAIN, 0.3, seed=5)
    assert sorted(kept.items + held.items) == sorted(TRAIN.items)
    assert not set(kept.items) & set(held.items)
    assert len(held.items) == round(0.3 * len(TRAIN.items))
    assert kept.items == [i for i in TRAIN.items if i in set(kept.items)]  # order kept
    assert validation.split(TRAIN, 0.3, seed=5)[1].items == held.items
    assert validation.split(TRAIN, 0.3, seed=6)[1].items != held.items
    with pytest.raises(ValueError, match="none to train on"):
        validation.split(TRAIN, 0.999, seed=5)

    judged = _csv(tmp_path)
    runs = {}
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        out = tmp_path / name
        result = _train("--csv", judged, "--val-fraction", "0.3", "--seed", seed, "--out", out,
                        "--params-dir", params_dir, "--epochs", "2", "--epochs-decay", "1",
                        "--batch-size", "8", "--patience", "5", "-q")
        assert result.returncode == 0, result.stderr
        runs[name] = bapps.read_csv(str(out / "held_out.csv"), "2afc")
    assert runs["a"].items == runs["b"].items != runs["c"].items
    held_out = runs["a"]
    assert set(held_out.items) < {tuple(os.path.abspath(p) for p in item) for item in TRAIN.items}
    # Every epoch is scored on the held-out triplets, as evaluate scores them.
    from metrics.lpips.evaluation.runner import Distance, evaluate
    out = tmp_path / "a"
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and float(rows[-1]["validation"]) == float(rows[-1]["2afc held-out"])
    want = evaluate(held_out, Distance("lpips", "alex", params_dir=str(out)))["score"]
    assert float(rows[-1]["2afc held-out"]) == pytest.approx(want, abs=1e-12)
    # The log as NNabla monitor series, and the figure.
    with open(out / "monitor" / "2afc-held-out.series.txt") as f:
        series = [line.split() for line in f]
    assert [int(e) for e, _ in series] == [1, 2, 3]
    assert [float(v) for _, v in series] == pytest.approx(
        [float(r["2afc held-out"]) for r in rows], abs=1e-6)
    with open(out / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    result = _train("--csv", judged, "--val-fraction", "1.5", "--out", tmp_path / "x")
    assert result.returncode == 2 and "--val-fraction" in result.stderr
