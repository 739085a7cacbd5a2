"""python -m metrics.lpips.datasets bapps against a local HTTP server serving archives packed
from the committed BAPPS-layout fixture: whole sets, resumed downloads, damaged and unsafe
archives, no network."""
import filecmp
import io
import os
import tarfile

import pytest

from file_server import FileServer, route
from conftest import COMMAND_ENV as ENV, command_line
from metrics.lpips import datasets
from metrics.lpips.cli.progress import Progress
from metrics.lpips.data import download
from metrics.lpips.evaluation import bapps, bapps_archives

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "data", "bapps")
OFFLINE = "http://127.0.0.1:9/dataset"  # the discard port: nothing listens


def _pack(members):
    """A .tar.gz in memory from (arcname, source path or bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for arcname, source in members:
            if isinstance(source, bytes):
                info = tarfile.TarInfo(arcname)
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            else:
                tar.add(source, arcname=arcname)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archives():
    """The two archives of the default subsets, laid out as the reference's are."""
    return {"twoafc_val.tar.gz": _pack([("val", os.path.join(FIXTURE, "2afc", "val"))]),
            "jnd.tar.gz": _pack([("jnd", os.path.join(FIXTURE, "jnd"))])}


@pytest.fixture
def server(archives):
    with FileServer() as files:
        for name, body in archives.items():
            files.routes["/dataset/" + name] = route(body)
        yield files


def _run(root, base_url, *extra):
    return datasets.main(["bapps", "--dataroot", str(root), "--base-url", base_url, "-q"] +
                         list(extra))


def _same_tree(a, b):
    comparison = filecmp.dircmp(a, b, ignore=[bapps_archives.MARKER])
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files
    for sub in comparison.common_dirs:
        _same_tree(os.path.join(a, sub), os.path.join(b, sub))


def _leftovers(root):
    """Staging folders and partial files anywhere under root."""
    found = []
    for folder, dirs, files in os.walk(str(root)):
        found += [d for d in dirs if d.startswith(".unpacking-")]
        found += [f for f in files if f.endswith(".part")]
    return found


def test_default_subsets_arrive_whole_and_evaluate_reads_them(server, tmp_path):
    root = tmp_path / "dataset"
    assert _run(root, server.url("/dataset")) == 0
    _same_tree(str(root / "2afc" / "val"), os.path.join(FIXTURE, "2afc", "val"))
    _same_tree(str(root / "jnd"), os.path.join(FIXTURE, "jnd"))
    assert bapps_archives.is_complete(str(root), bapps_archives.ARCHIVES["val"])
    assert not (root / "archives").exists() and not _leftovers(root)
    judged = bapps.read_folder(str(root / "2afc" / "val" / "mixed"), "2afc")
    assert len(judged.items) == 16
    # Complete sets are not fetched again.
    asked = len(server.requests)
    assert _run(root, server.url("/dataset")) == 0
    assert len(server.requests) == asked


def test_keep_archives(server, tmp_path, archives):
    assert _run(tmp_path, server.url("/dataset"), "--subset", "jnd", "--keep-archives") == 0
    with open(str(tmp_path / "archives" / "jnd.tar.gz"), "rb") as f:
        assert f.read() == archives["jnd.tar.gz"]
    assert not (tmp_path / "2afc").exists()


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "server-ignores-range"])
def test_download_resumes_after_a_cut(server, tmp_path, archives, ranges):
    body = archives["twoafc_val.tar.gz"]
    cut = len(body) // 3
    server.routes["/dataset/twoafc_val.tar.gz"] = route(body, cut_at=cut, ranges=ranges)
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 4
    # What arrived is kept.
    kept = (tmp_path / "archives" / "twoafc_val.tar.gz.part").stat().st_size
    assert kept == cut
    assert not (tmp_path / "2afc" / "val").exists()  # nothing half-made is in place
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 0
    assert server.requests[-1] == ("/dataset/twoafc_val.tar.gz", "bytes={}-".format(kept))
    _same_tree(str(tmp_path / "2afc" / "val"), os.path.join(FIXTURE, "2afc", "val"))
    assert not _leftovers(tmp_path)


def test_interrupted_download_keeps_its_bytes(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "CHUNK_BYTES", 4096)
    updates = []

    def ctrl_c(self, n=1):
        updates.append(n)
        if len(updates) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", ctrl_c)
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 130
    kept = sum(updates)  # every chunk written before Ctrl-C, and only those
    assert (tmp_path / "archives" / "twoafc_val.tar.gz.part").stat().st_size == kept > 0
    monkeypatch.undo()
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 0
    assert server.requests[-1][1] == "bytes={}-".format(kept)
    _same_tree(str(tmp_path / "2afc" / "val"), os.path.join(FIXTURE, "2afc", "val"))


def test_a_truncated_archive_is_never_taken_as_a_set(server, tmp_path, archives, capsys):
    body = archives["twoafc_val.tar.gz"]
    # The server states the truncated size: the download looks whole, the archive is not.
    server.routes["/dataset/twoafc_val.tar.gz"] = route(body[:len(body) - 2000])
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 3
    assert "damaged or truncated" in capsys.readouterr().err
    assert not (tmp_path / "2afc" / "val").exists() and not _leftovers(tmp_path)
    assert not (tmp_path / "archives" / "twoafc_val.tar.gz").exists()  # fetched anew next time
    server.routes["/dataset/twoafc_val.tar.gz"] = route(body)
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 0


@pytest.mark.parametrize("member, problem", [
    ("../evil.txt", "leaves the folder"),
    ("val/../../evil.txt", "leaves the folder"),
    ("/tmp/evil.txt", "absolute path"),
    ("symlink", "a link"),
])
def test_unsafe_members_are_refused(server, tmp_path, member, problem, capsys):
    good = ("val/mixed/judge/000.npy", b"x")
    if member == "symlink":
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.addfile(tarfile.TarInfo("val/a"), io.BytesIO(b""))
            link = tarfile.TarInfo("val/evil")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
        body = buffer.getvalue()
    else:
        body = _pack([good, (member, b"owned")])
    server.routes["/dataset/twoafc_val.tar.gz"] = route(body)
    root = tmp_path / "dataset"
    assert _run(root, server.url("/dataset"), "--subset", "val") == 3
    err = capsys.readouterr().err
    assert "refused member" in err and problem in err
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert not (root / "2afc" / "val").exists() and not _leftovers(root)


def test_an_archive_without_its_folder_is_refused(server, tmp_path, capsys):
    server.routes["/dataset/jnd.tar.gz"] = route(_pack([("something/else.txt", b"x")]))
    assert _run(tmp_path, server.url("/dataset"), "--subset", "jnd") == 3
    assert "no jnd/ folder" in capsys.readouterr().err
    assert not (tmp_path / "jnd").exists() and not _leftovers(tmp_path)


def test_offline_fails_fast_and_says_where_to_put_the_archives(tmp_path, capsys, archives):
    assert _run(tmp_path, OFFLINE) == 4
    message = capsys.readouterr().err
    assert "cannot reach" in message and str(tmp_path / "archives") in message
    assert OFFLINE + "/twoafc_val.tar.gz" in message and OFFLINE + "/jnd.tar.gz" in message
    assert not (tmp_path / "2afc").exists() and not _leftovers(tmp_path)
    # As the message says: archives fetched elsewhere are unpacked without network.
    (tmp_path / "archives").mkdir()
    for name, body in archives.items():
        (tmp_path / "archives" / name).write_bytes(body)
    assert _run(tmp_path, OFFLINE) == 0
    _same_tree(str(tmp_path / "jnd"), os.path.join(FIXTURE, "jnd"))


def test_a_folder_in_the_way_is_left_alone(server, tmp_path, capsys):
    half = tmp_path / "2afc" / "val" / "traditional"
    half.mkdir(parents=True)
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 3
    assert "was not completed by this command" in capsys.readouterr().err
    assert os.listdir(str(tmp_path / "2afc" / "val")) == ["traditional"]
    assert server.requests == []


def test_no_disk_space_stops_before_writing(server, tmp_path, monkeypatch, capsys):
    usage = datasets.shutil.disk_usage(str(tmp_path))
    monkeypatch.setattr(datasets.shutil, "disk_usage",
                        lambda path: usage._replace(free=1000))
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 4
    assert "GB free" in capsys.readouterr().err
    assert not (tmp_path / "archives").exists() or not os.listdir(str(tmp_path / "archives"))


def test_http_error_is_named(server, tmp_path, capsys):
    del server.routes["/dataset/jnd.tar.gz"]
    assert _run(tmp_path, server.url("/dataset"), "--subset", "jnd") == 4
    assert "404" in capsys.readouterr().err and not _leftovers(tmp_path)


def test_a_complete_part_is_finished_without_a_new_transfer(server, tmp_path, archives):
    body = archives["jnd.tar.gz"]
    dest = str(tmp_path / "jnd.tar.gz")
    with open(download.part_path(dest), "wb") as f:
        f.write(body)
    download.download_resumable(server.url("/dataset/jnd.tar.gz"), dest)
    with open(dest, "rb") as f:
        assert f.read() == body
    assert server.requests == [("/dataset/jnd.tar.gz", "bytes={}-".format(len(body)))]


def test_a_trickling_server_is_given_up_on_and_resumed_later(server, tmp_path, archives,
                                                             monkeypatch, capsys):
    monkeypatch.setattr(download, "WINDOW_SECONDS", 0.5)
    monkeypatch.setattr(download, "MIN_BYTES_PER_WINDOW", 100)
    body = archives["jnd.tar.gz"]
    server.routes["/dataset/jnd.tar.gz"] = route(body, trickle=0.05)  # 20 bytes a second
    assert _run(tmp_path, server.url("/dataset"), "--subset", "jnd") == 4
    assert "stalled" in capsys.readouterr().err
    kept = (tmp_path / "archives" / "jnd.tar.gz.part").stat().st_size
    assert 0 < kept < 100
    server.routes["/dataset/jnd.tar.gz"] = route(body)
    assert _run(tmp_path, server.url("/dataset"), "--subset", "jnd") == 0
    _same_tree(str(tmp_path / "jnd"), os.path.join(FIXTURE, "jnd"))


def test_sigterm_keeps_the_download_and_a_killed_unpack_is_cleaned(server, tmp_path, archives):
    import signal
    import subprocess
    body = archives["twoafc_val.tar.gz"]
    server.routes["/dataset/twoafc_val.tar.gz"] = route(body, trickle=0.001)
    proc = subprocess.Popen(command_line("datasets", "bapps", "--dataroot",
                             str(tmp_path), "--subset", "val", "--base-url", server.url("/dataset")),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "downloaded" in line:  # the first progress report: bytes are on disk
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "kept in" in err and (tmp_path / "archives" / "twoafc_val.tar.gz.part").exists()
    # A staging folder a killed run left behind is removed, and the set completes.
    stale = tmp_path / "2afc" / ".unpacking-val-old"
    stale.mkdir(parents=True)
    server.routes["/dataset/twoafc_val.tar.gz"] = route(body)
    assert _run(tmp_path, server.url("/dataset"), "--subset", "val") == 0
    assert not stale.exists() and not _leftovers(tmp_path)
