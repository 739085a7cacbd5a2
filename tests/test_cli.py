"""The compute CLI, run as a subprocess for every mode and error path; scores are checked
against the library's."""
import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import COMMAND_ENV as ENV, command_line, ROOT, run_command, SAMPLES
from metrics.lpips import distance



def cli(*args, **kw):
    return run_command("compute", *args, **kw)


def parse_text(stdout):
    rows = []
    for line in stdout.splitlines():
        score, paths = line.split(": ", 1)
        p0, p1 = paths.split(" - ")
        rows.append((p0, p1, float(score)))
    return rows


def library(p0, p1, model="alex"):
    return distance(iio.imread(p0)[:, :, :3], iio.imread(p1)[:, :, :3], model=model)


@pytest.fixture
def dirs(tmp_path):
    ref, dist = tmp_path / "ref", tmp_path / "dist"
    shutil.copytree(os.path.join(SAMPLES, "ref"), str(ref))
    shutil.copytree(os.path.join(SAMPLES, "distorted"), str(dist))
    (ref / "notes.txt").write_text("not an image")
    return ref, dist


def test_single_pair(params_dir):
    p0, p1 = os.path.join(SAMPLES, "ref", "cat.png"), os.path.join(SAMPLES, "distorted", "cat.png")
    result = cli(p0, p1)
    assert result.returncode == 0, result.stderr
    (r0, r1, score), = parse_text(result.stdout)
    assert (r0, r1) == (p0, p1)
    assert score == pytest.approx(library(p0, p1), abs=1e-6)
    assert "LPIPS of the one pair: 0.149140" in result.stderr and "mean" not in result.stdout


def test_backends_give_the_same_scores(params_dir, dirs):
    ref, dist = dirs
    results = {}
    for backend, extra, logged in (("nnabla", [], "nnabla\n"),
                                   ("onnxruntime", [], "onnxruntime (Winograd convolutions)"),
                                   ("onnxruntime", ["--no-winograd"], "onnxruntime\n")):
        result = cli(ref, dist, "--backend", backend, "--format", "json", *extra)
        assert result.returncode == 0, result.stderr
        assert "backend: " + logged in result.stderr
        results[backend + "".join(extra)] = [p["lpips"] for p in json.loads(result.stdout)["pairs"]]
    np.testing.assert_allclose(results["onnxruntime"], results["nnabla"], atol=1e-5)
    np.testing.assert_allclose(results["onnxruntime--no-winograd"], results["nnabla"], atol=1e-5)


def test_version_option(params_dir):
    p0, p1 = os.path.join(SAMPLES, "ref", "coffee.png"), os.path.join(SAMPLES, "distorted", "coffee.png")
    result = cli(p0, p1, "--version", "0.0", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["version"] == "0.0"
    expected = distance(iio.imread(p0), iio.imread(p1), version="0.0")
    assert doc["pairs"][0]["lpips"] == pytest.approx(expected, abs=1e-6)
    assert abs(expected - library(p0, p1)) > 1e-3


def test_directories_paired_by_name_csv(params_dir, dirs):
    ref, dist = dirs
    result = cli(ref, dist, "--model", "vgg", "--format", "csv", "--batch-size", 2)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = list(csv.DictReader(l for l in lines if not l.startswith("#")))
    assert [os.path.basename(r["path0"]) for r in rows] == ["cat.png", "coffee.png", "rocket.png"]
    for r in rows:
        assert float(r["lpips"]) == pytest.approx(library(r["path0"], r["path1"], "vgg"), abs=1e-6)
    assert lines[-1].startswith("# count=3 mean=")


def test_original_format_single_pair(params_dir, tmp_path):
    p0, p1 = os.path.join(SAMPLES, "ref", "cat.png"), os.path.join(SAMPLES, "distorted", "cat.png")
    result = cli(p0, p1, "--format", "original")
    assert result.returncode == 0, result.stderr
    # The original module's stdout: its constructor's line, then the score to 3 decimals.
    assert result.stdout == "Use AlexNet's features\nLPIPS: {:.3f}\n".format(library(p0, p1))


def test_original_format_folders_to_file(params_dir, dirs, tmp_path):
    ref, dist = dirs
    out = tmp_path / "scores.txt"
    result = cli(ref, dist, "--model", "vgg", "--format", "original", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("Use VGG's features\nAll the computed LPIPS scores are recorded "
                             "to {}.\n".format(out))
    lines = out.read_text().splitlines()
    assert lines[0] == "LPIPS"  # the header a parser of the original's files skips
    expected = ["{:.3f}: {} - {}".format(library(str(ref / n), str(dist / n), "vgg"), ref / n, dist / n)
                for n in ("cat.png", "coffee.png", "rocket.png")]
    assert lines[1:] == expected
    # Without -o, the same lines on stdout after the model line, and no header.
    shown = cli(ref, dist, "--model", "vgg", "--format", "original").stdout.splitlines()
    assert shown == ["Use VGG's features"] + expected


def test_directories_with_different_names(params_dir, dirs):
    ref, dist = dirs
    os.rename(str(dist / "cat.png"), str(dist / "kitten.png"))
    result = cli(ref, dist)
    assert result.returncode == 3
    assert "Only in {}: cat.png".format(ref) in result.stderr and "kitten.png" in result.stderr
    result = cli(ref, dist, "--pair-by", "order", "--format", "json")
    assert result.returncode == 0, result.stderr
    pairs = json.loads(result.stdout)["pairs"]
    assert [(os.path.basename(p["path0"]), os.path.basename(p["path1"])) for p in pairs] == [
        ("cat.png", "coffee.png"), ("coffee.png", "kitten.png"), ("rocket.png", "rocket.png")]


def test_path_lists(params_dir, tmp_path, dirs):
    ref, dist = dirs
    (tmp_path / "a.txt").write_text("# references\nref/cat.png\n\n{}\n".format(ref / "rocket.png"))
    (tmp_path / "b.txt").write_text("dist/cat.png\n# comment\ndist/rocket.png\n")
    result = cli(tmp_path / "a.txt", tmp_path / "b.txt", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [os.path.basename(p["path0"]) for p in doc["pairs"]] == ["cat.png", "rocket.png"]
    for p in doc["pairs"]:
        assert p["lpips"] == pytest.approx(library(p["path0"], p["path1"]), abs=1e-6)
    (tmp_path / "b.txt").write_text("dist/cat.png\n")
    result = cli(tmp_path / "a.txt", tmp_path / "b.txt")
    assert result.returncode == 3 and "lists 2 paths" in result.stderr


def test_all_pairs_reports_mean_and_standard_error(params_dir, dirs):
    ref, _ = dirs
    result = cli("--all-pairs", ref, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    scores = [p["lpips"] for p in doc["pairs"]]
    assert len(scores) == 3
    assert doc["summary"]["mean"] == pytest.approx(np.mean(scores))
    assert doc["summary"]["stderr"] == pytest.approx(np.std(scores, ddof=1) / np.sqrt(3))


def test_image_formats_and_modes(params_dir, tmp_path):
    rgb = iio.imread(os.path.join(SAMPLES, "ref", "coffee.png"))
    other = iio.imread(os.path.join(SAMPLES, "distorted", "coffee.png"))
    gray, gray_other = rgb.mean(axis=2).astype(np.uint8), other.mean(axis=2).astype(np.uint8)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for name, x0, x1 in [("p.PNG", rgb, other), ("q.bmp", rgb, other), ("r.tif", rgb, other),
                         ("s.webp", rgb, rgb), ("t.png", gray, gray_other),
                         ("u.png", np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]), other),
                         ("v.tif", rgb.astype(np.uint16) * 257, other.astype(np.uint16) * 257),
                         ("x.png", gray.astype(np.uint16) * 257, gray_other.astype(np.uint16) * 257)]:
        kw = {"lossless": True} if name.endswith("webp") else {}
        iio.imwrite(str(a / name), x0, **kw)
        iio.imwrite(str(b / name), x1, **kw)
    iio.imwrite(str(a / "w.JPEG"), rgb, quality=95)
    iio.imwrite(str(b / "w.JPEG"), rgb, quality=95)
    result = cli(a, b, "--format", "json")
    assert result.returncode == 0, result.stderr
    scores = {os.path.basename(p["path0"]): p["lpips"] for p in json.loads(result.stdout)["pairs"]}
    assert len(scores) == 9
    expected = distance(rgb, other)
    for name in ("p.PNG", "q.bmp", "r.tif", "u.png"):
        assert scores[name] == pytest.approx(expected, abs=1e-6), name
    assert scores["v.tif"] == pytest.approx(expected, abs=1e-5)
    assert iio.imread(str(a / "x.png")).dtype == np.uint16  # really a 16-bit file
    assert scores["s.webp"] == 0 and scores["w.JPEG"] == 0
    gray3 = np.repeat(gray[:, :, None], 3, axis=2)
    gray_score = distance(gray3, np.repeat(gray_other[:, :, None], 3, axis=2))
    assert scores["t.png"] == pytest.approx(gray_score, abs=1e-6)
    assert scores["x.png"] == pytest.approx(gray_score, abs=1e-5)


def test_different_sizes(params_dir, tmp_path):
    img = iio.imread(os.path.join(SAMPLES, "ref", "cat.png"))
    iio.imwrite(str(tmp_path / "big.png"), img)
    iio.imwrite(str(tmp_path / "small.png"), img[:100, :90])
    result = cli(tmp_path / "big.png", tmp_path / "small.png")
    assert result.returncode == 3
    assert "128x128" in result.stderr and "90x100" in result.stderr and "--resize" in result.stderr
    result = cli(tmp_path / "big.png", tmp_path / "small.png", "--resize")
    assert result.returncode == 0, result.stderr
    assert 0 < parse_text(result.stdout)[0][2] < 1


def test_image_too_small_names_the_minimum(params_dir, tmp_path):
    img = iio.imread(os.path.join(SAMPLES, "ref", "cat.png"))[:20, :40]
    iio.imwrite(str(tmp_path / "a.png"), img)
    iio.imwrite(str(tmp_path / "b.png"), img)
    result = cli(tmp_path / "a.png", tmp_path / "b.png")
    assert result.returncode == 3 and "at least 31x31" in result.stderr
    assert cli(tmp_path / "a.png", tmp_path / "b.png", "--model", "vgg").returncode == 0


def test_failure_midway_leaves_no_outfile(params_dir, dirs, tmp_path):
    ref, dist = dirs
    (dist / "coffee.png").write_bytes(b"corrupt")
    out = tmp_path / "scores.txt"
    result = cli(ref, dist, "-o", out, "--batch-size", 1)
    assert result.returncode == 3
    assert "coffee.png" in result.stderr
    assert not out.exists() and os.listdir(str(tmp_path)) == sorted(os.listdir(str(tmp_path)))
    assert not [f for f in os.listdir(str(tmp_path)) if f.endswith(".part")]
    out.write_text("previous results\n")
    # The scores before the bad pair are in the journal: a plain rerun is told to resume.
    result = cli(ref, dist, "-o", out)
    assert result.returncode == 2 and "pass --resume" in result.stderr
    assert cli(ref, dist, "-o", out, "--resume").returncode == 3
    assert out.read_text() == "previous results\n"


def test_skip_bad_reports_and_continues(params_dir, dirs, tmp_path):
    ref, dist = dirs
    (dist / "coffee.png").write_bytes(b"corrupt")
    out = tmp_path / "scores.json"
    result = cli(ref, dist, "-o", out, "--format", "json", "--skip-bad")
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert [os.path.basename(p["path0"]) for p in doc["pairs"]] == ["cat.png", "rocket.png"]
    assert os.path.basename(doc["skipped"][0]["path1"]) == "coffee.png"
    assert "cannot read image" in doc["skipped"][0]["reason"]
    # Nothing scorable at all: exit 3 with the count, and no file.
    for name in ("cat.png", "rocket.png"):
        (dist / name).write_bytes(b"corrupt")
    out.unlink()
    result = cli(ref, dist, "-o", out, "--skip-bad")
    assert result.returncode == 3 and "all 3 pair(s) were skipped" in result.stderr
    assert not out.exists()


def test_odd_lists_and_names(params_dir, dirs, tmp_path):
    ref, dist = dirs
    # A byte-order mark (Windows editors write one) is not part of the first path.
    (tmp_path / "a.txt").write_bytes("\ufeffref/cat.png\n".encode("utf-8"))
    (tmp_path / "b.txt").write_text("dist/cat.png\n")
    result = cli(tmp_path / "a.txt", tmp_path / "b.txt")
    assert result.returncode == 0, result.stderr
    (tmp_path / "a.txt").write_bytes("ref/caf\xe9.png\n".encode("latin-1"))
    result = cli(tmp_path / "a.txt", tmp_path / "b.txt")
    assert result.returncode == 3 and "is not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr
    # Hidden files (macOS's ._ companions) take no part in pairing.
    (ref / "._cat.png").write_bytes(b"resource fork")
    result = cli(ref, dist, "--format", "csv")
    assert result.returncode == 0 and "._cat" not in result.stdout
    # A newline in a file name cannot split a text line in two.
    odd = "new\nline.png"
    shutil.copy(str(ref / "cat.png"), str(tmp_path / odd))
    shutil.copy(str(dist / "cat.png"), str(tmp_path / "plain.png"))
    result = cli(tmp_path / odd, tmp_path / "plain.png")
    assert result.returncode == 0 and result.stdout.count("\n") == 1
    assert "new\\nline.png" in result.stdout


def test_heatmaps(params_dir, dirs, tmp_path):
    ref, dist = dirs
    result = cli(ref, dist, "--heatmap-dir", tmp_path / "maps", "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(str(tmp_path / "maps"))) == ["00000_cat.png", "00001_coffee.png", "00002_rocket.png"]
    heat = iio.imread(str(tmp_path / "maps" / "00000_cat.png"))
    from metrics.lpips.data.heatmap import BAR_WIDTH
    assert heat.shape == (128, 128 + BAR_WIDTH, 3) and heat[:, :128].std() > 0
    assert heat[:, 128:].std() > 0  # the colour bar and its labels
    # One scale for every map: the pale top of the ramp only where a map reaches it; an overlay
    # shows the image through the map.
    result = cli(ref, dist, "--heatmap-dir", tmp_path / "common", "--heatmap-scale", "2", "-q")
    assert result.returncode == 0, result.stderr
    common = iio.imread(str(tmp_path / "common" / "00000_cat.png"))
    assert common[:, :128].max() < heat[:, :128].max()  # 0.45 of 2 is darker than of 0.45
    result = cli(ref, dist, "--heatmap-dir", tmp_path / "over", "--heatmap-overlay", "-q")
    over = iio.imread(str(tmp_path / "over" / "00000_cat.png"))
    image = iio.imread(str(ref / "cat.png"))[..., :3].astype(float)
    assert np.abs(over[:, :128] - (0.5 * heat[:, :128] + 0.5 * image)).max() <= 1
    assert cli(ref, dist, "--heatmap-scale", "2").returncode == 2  # without --heatmap-dir
    assert cli(ref, dist, "--heatmap-dir", tmp_path / "x", "--heatmap-scale", "0").returncode == 2


def test_usage_and_environment_errors(params_dir, dirs):
    ref, dist = dirs
    assert cli(ref).returncode == 2
    assert cli(ref, dist, "--batch-size", 0).returncode == 2
    assert cli(ref, dist, "--model", "resnet").returncode == 2
    result = cli(ref, dist, "-c", "cudnn")
    assert result.returncode == 4 and "cannot use cudnn" in result.stderr
    result = cli(ref, dist, "--model", "squeeze", "--params-dir", ref)
    assert result.returncode == 4 and "metrics.lpips.convert" in result.stderr
    assert cli(ref / "cat.png", dist).returncode == 3


def test_wrong_output_paths_are_refused_before_any_work(params_dir, dirs, tmp_path):
    ref, dist = dirs
    (tmp_path / "plain").write_text("x")
    for args, message in ((("-o", tmp_path), "is a directory"),
                          (("-o", tmp_path / "plain" / "scores.txt"), "is a file, not a folder"),
                          (("--heatmap-dir", tmp_path / "plain"), "is a file")):
        result = cli(ref, dist, *args)
        assert result.returncode == 2 and message in result.stderr
        assert "model alex" not in result.stderr  # refused before anything was scored
    result = cli(ref, dist, "--params-dir", tmp_path / "typo")
    assert result.returncode == 4 and "does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()
    result = cli(ref, dist, "--params-dir", tmp_path / "plain")
    assert result.returncode == 4 and "is a file" in result.stderr


def test_outputs_never_overwrite_inputs(params_dir, dirs, tmp_path):
    ref, dist = dirs
    (tmp_path / "l0.txt").write_text("ref/cat.png\n")
    (tmp_path / "l1.txt").write_text("dist/cat.png\n")
    before = (tmp_path / "l0.txt").read_text()
    for args, message in (((tmp_path / "l0.txt", tmp_path / "l1.txt", "-o", tmp_path / "l0.txt"),
                           "is one of the inputs"),
                          ((ref / "cat.png", dist / "cat.png", "-o", dist / "cat.png"),
                           "is one of the inputs"),
                          ((ref, dist, "--heatmap-dir", dist), "holds input images")):
        result = cli(*args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert (tmp_path / "l0.txt").read_text() == before
    assert sorted(os.listdir(str(dist))) == ["cat.png", "coffee.png", "rocket.png"]
    # The same file given twice is fine, and a map folder beside the inputs too.
    result = cli(ref / "cat.png", ref / "cat.png", "--heatmap-dir", tmp_path / "maps")
    assert result.returncode == 0 and result.stdout.startswith("0.000000")


def test_outputs_that_fail_when_written_exit_4_without_traceback(params_dir, dirs):
    ref, dist = dirs
    result = cli(ref, dist, "-o", "/dev/full")
    assert result.returncode == 4 and "cannot write /dev/full" in result.stderr
    assert "Traceback" not in result.stderr
    with open("/dev/full", "w") as full:  # stdout on a full disk
        result = subprocess.run(command_line("compute", str(ref), str(dist)),
                                env=ENV, stdout=full, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 4 and "cannot write to stdout" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    proc = subprocess.Popen(command_line("compute", str(ref), str(dist)),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the scores come (a `| head -0`)
    err = proc.stderr.read()
    assert proc.wait() == 4 and "stdout was closed" in err and "Traceback" not in err


def test_output_through_links_and_special_files_keeps_them(params_dir, dirs, tmp_path):
    ref, dist = dirs
    target = tmp_path / "target.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert cli(ref, dist, "-o", link).returncode == 0
    assert link.is_symlink() and len(target.read_text().splitlines()) == 3
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    received = []
    reader = threading.Thread(target=lambda: received.append(open(str(fifo)).read()))
    reader.start()
    assert cli(ref, dist, "-o", fifo).returncode == 0
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.stat(str(fifo)).st_mode) and len(received[0].splitlines()) == 3
    # -o /dev/stdout, stdout being a pipe: written through, as the user meant.
    result = cli(ref, dist, "-o", "/dev/stdout")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 3, result.stderr


def test_output_file_permissions(params_dir, dirs, tmp_path):
    ref, dist = dirs
    private = tmp_path / "private.txt"
    private.write_text("old")
    private.chmod(0o600)
    assert cli(ref, dist, "-o", private).returncode == 0
    assert stat.S_IMODE(os.stat(str(private)).st_mode) == 0o600  # kept
    fresh = tmp_path / "fresh.txt"
    assert cli(ref, dist, "-o", fresh, preexec_fn=lambda: os.umask(0o077)).returncode == 0
    assert stat.S_IMODE(os.stat(str(fresh)).st_mode) == 0o600  # the umask, not 0644


def ctrl_c_after(proc, marker, signum=signal.SIGINT):
    """Waits for a stderr line holding ``marker`` (the first progress report), sends Ctrl-C
    (or ``signum``), and returns all of stderr once the process has ended."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            break
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return "".join(seen) + err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                          (signal.SIGKILL, -9)],
                         ids=["ctrl-c", "sigterm", "kill-9"])
def test_interrupted_run_leaves_no_partial_file(params_dir, tmp_path, signum, code):
    src = iio.imread(os.path.join(SAMPLES, "ref", "rocket.png"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(40):
        iio.imwrite(str(folder / "{:02d}.png".format(i)), np.roll(src, i, axis=1))
    out, maps = tmp_path / "scores.txt", tmp_path / "maps"
    proc = subprocess.Popen(command_line("compute", "--all-pairs", str(folder),
                             "--batch-size", "4", "-o", str(out), "--heatmap-dir", str(maps)),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ctrl_c_after(proc, "/780 pairs scored", signum)
    assert proc.returncode == code, err
    # No score file; the journal of what was scored; no half-written map (kill -9 leaves no
    # chance to delete the hidden temporary file of a map being written).
    assert sorted(os.listdir(str(tmp_path))) == ["imgs", "maps", "scores.txt.partial"]
    if signum != signal.SIGKILL:
        assert "interrupted" in err
        assert not [n for n in os.listdir(str(maps)) if n.endswith(".part")]
    journal_lines = (tmp_path / "scores.txt.partial").read_text().splitlines()
    done = len(journal_lines) - 1  # the header, then one line a pair
    assert 0 < done < 780
    # --resume scores only the rest (counted by its progress report), and the file equals an
    # uninterrupted run's; the journal is gone.
    resumed = cli("--all-pairs", folder, "--batch-size", 4, "-o", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: {} of 780 pair(s) scored before".format(done) in resumed.stderr
    assert "/{} pairs scored".format(780 - done) in resumed.stderr
    whole = tmp_path / "whole.txt"
    assert cli("--all-pairs", folder, "-o", whole).returncode == 0
    assert out.read_text() == whole.read_text()
    assert not (tmp_path / "scores.txt.partial").exists()


def test_a_journal_of_other_settings_is_refused(params_dir, dirs, tmp_path):
    ref, dist = dirs
    out = tmp_path / "scores.txt"
    (tmp_path / "scores.txt.partial").write_text(json.dumps(
        {"format": "metrics.lpips journal 1", "settings": {"model": "vgg"}}) + "\n" + json.dumps(
        {"i": 0, "p0": "a.png", "p1": "b.png", "s": 0.5}) + "\n")  # a journal with a score
    result = cli(ref, dist, "-o", out, "--resume")
    assert result.returncode == 2 and "written for other inputs or settings" in result.stderr
    assert "model: alex here, vgg there" in result.stderr and not out.exists()
    result = cli(ref, dist, "--resume")
    assert result.returncode == 2 and "needs -o" in result.stderr


def test_scores_stream_to_stdout_in_input_order(params_dir, dirs):
    ref, dist = dirs
    proc = subprocess.Popen(command_line("compute", str(ref), str(dist),
                             "--batch-size", "1", "-q"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # arrives while the other pairs are still to be scored
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = [first] + rest.splitlines(keepends=True)
    assert [os.path.basename(l.split(" - ")[1].strip()) for l in lines] == [
        "cat.png", "coffee.png", "rocket.png"]
    assert "".join(lines) == cli(ref, dist, "-q", "--batch-size", 32).stdout
    csv_out = cli(ref, dist, "--format", "csv", "--batch-size", 1).stdout.splitlines()
    assert csv_out[0] == "path0,path1,lpips" and csv_out[-1].startswith("# count=3 mean=")


def test_ctrl_c_during_an_export_stops_it_and_leaves_nothing(params_dir, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(os.path.join(params_dir, "vgg_with_LPIPS.h5"), str(weights))
    sample = os.path.join(SAMPLES, "ref", "cat.png")
    cache = tmp_path / "cache"  # empty: the export has to run
    proc = subprocess.Popen(command_line("compute", sample, sample,
                             "--model", "vgg", "--params-dir", str(weights)),
                            env=dict(ENV, NNABLA_LPIPS_CACHE_DIR=str(cache)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.time()
    err = ctrl_c_after(proc, "exporting the vgg trunk")
    assert proc.returncode == 130, err
    # Stopped mid-export (the trunk never written), its temporary files removed on the way out.
    assert not cache.exists() or os.listdir(str(cache)) == []
    temp = tempfile.gettempdir()
    assert not [n for n in os.listdir(temp) if n.startswith("lpips-export-")
                and os.stat(os.path.join(temp, n)).st_mtime >= started]


LOADING = """
import os, signal, sys, time
sys.argv[0] = "-m"  # as while python -m metrics.lpips.compute loads
import metrics.lpips
os.kill(os.getpid(), signal.{})
time.sleep(10)
"""


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_a_command_loads_exits_quietly(name, code):
    # Raised inside NNabla's import, a KeyboardInterrupt printed a traceback and crashed
    # NNabla's exit handler now and then (a segfault).
    result = subprocess.run([sys.executable, "-c", LOADING.format(name)], env=ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == code and "Traceback" not in result.stderr, result.stderr
    # Imported as a library, the package leaves the process's signal handlers alone.
    library = subprocess.run([sys.executable, "-c", "import signal, metrics.lpips; "
                              "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
                             env=ENV, capture_output=True, text=True, timeout=60)
    assert library.stdout.strip() == "True", library.stderr


def test_ctrl_c_is_deferred_to_between_pairs():
    from metrics.lpips.cli.interrupt import ctrl_c_between_items
    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_between_items() as stop_if_interrupted:
        stop_if_interrupted()  # not pressed: nothing happens
        signal.raise_signal(signal.SIGINT)  # only noted...
        with pytest.raises(KeyboardInterrupt):
            stop_if_interrupted()  # ...and raised here
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # a second Ctrl-C interrupts at once
    assert signal.getsignal(signal.SIGINT) is before
    # Pressed after the loop's last check (during the last batch): the block still ends in
    # KeyboardInterrupt, so no output is written and the exit code is 130.
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_between_items():
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_during_the_only_batch_writes_nothing(params_dir, tmp_path):
    big = np.tile(iio.imread(os.path.join(SAMPLES, "ref", "cat.png")), (8, 8, 1))  # 1024 px
    iio.imwrite(str(tmp_path / "a.png"), big)
    iio.imwrite(str(tmp_path / "b.png"), big[::-1])
    out = tmp_path / "out.txt"
    out.write_text("previous scores")
    proc = subprocess.Popen(command_line("compute", str(tmp_path / "a.png"),
                             str(tmp_path / "b.png"), "--model", "vgg", "-o", str(out)), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ctrl_c_after(proc, "1 pair(s)")  # logged just before the one pair is scored
    assert proc.returncode == 130, err
    assert out.read_text() == "previous scores"


def _python_of_version(folder, version):
    """An executable that answers as a Python ``version`` (a tuple) would: this interpreter,
    with ``sys.version_info`` set to it before running the ``-c`` code it is given."""
    path = folder / "python{}.{}".format(*version)
    path.write_text('#!/bin/sh\n[ "$1" = "-c" ] && exec "{}" -c "import sys; sys.version_info = '
                    '{!r}; $2"\nexec "{}" "$@"\n'.format(sys.executable, tuple(version) + (0, "final", 0),
                                                      sys.executable))
    path.chmod(0o755)
    return str(path)


def test_setup_accepts_only_python_3_10(tmp_path):
    # The pinned packages need 3.10: another Python must be refused at once, not fail late.
    function = subprocess.run(["sed", "-n", "/^supported()/,/^}/p", os.path.join(ROOT, "scripts", "setup.sh")],
                              capture_output=True, text=True).stdout
    assert function.startswith("supported()")
    candidates = [(sys.executable, True), (_python_of_version(tmp_path, (3, 10)), True)]
    candidates += [(_python_of_version(tmp_path, v), False) for v in ((3, 8), (3, 9), (3, 11))]
    for python, accepted in candidates:
        result = subprocess.run(["bash", "-c", function + '\nsupported "$1"', "-", python],
                                capture_output=True, text=True)
        assert (result.returncode == 0) == accepted, (python, result.stdout)
