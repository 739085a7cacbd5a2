# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Writing files so that readers see the old file or the whole new one, never a part."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(dest):
    """Yields a temporary path beside ``dest``; renames it to ``dest`` when the block ends
    normally, and removes it when the block raises (Ctrl-C included)."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(dest) + ".",
                               suffix=".part")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs and the cache are meant to be shared
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
