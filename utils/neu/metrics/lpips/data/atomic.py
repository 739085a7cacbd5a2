# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Writing files so that readers see the old file or the whole new one, never a part."""
import contextlib
import os
import stat
import tempfile


_PENDING = set()  # temporary paths in use now, for remove_pending


@contextlib.contextmanager
def pending(path):
    """Registers ``path`` (a temporary file or folder) for :func:`remove_pending` while the
    block runs."""
    _PENDING.add(path)
    try:
        yield path
    finally:
        _PENDING.discard(path)


def remove_pending():
    """Deletes the temporary files and folders in use now: for a process that must end at
    once (a signal during an export), which will not run its ``finally`` blocks."""
    import shutil
    for path in list(_PENDING):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            try:
                os.remove(path)
            except OSError:
                pass


def written_in_place(path):
    """Whether ``path`` is a FIFO or a device (``/dev/stdout``, through links, /proc's too):
    such a target cannot be replaced, and must not be; it is written as it is."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _new_file_mode():
    """What ``open()`` would give a new file: 0666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(dest):
    """Yields a temporary path beside ``dest``; renames it to ``dest`` when the block ends
    normally, and removes it when the block raises (Ctrl-C included).

    A symbolic link stays a link: its target is what gets replaced. A file keeps its
    permissions; a new one gets the umask's. A FIFO or a device (``-o /dev/stdout``) cannot
    be replaced and must not be: the path itself is yielded, to be written in place."""
    if written_in_place(dest):
        yield dest
        return
    if os.path.isdir(dest):
        raise IsADirectoryError("{} is a directory".format(dest))
    real = os.path.realpath(dest)
    mode = os.stat(real).st_mode if os.path.exists(real) else None
    folder = os.path.dirname(real)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(real) + ".",
                               suffix=".part")
    os.close(fd)
    os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else _new_file_mode())
    try:
        with pending(tmp):
            yield tmp
            os.replace(tmp, real)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
