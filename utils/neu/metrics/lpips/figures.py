# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Writing matplotlib figures (an optional dependency: importing this module raises
ImportError without it), off-screen and atomically."""
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .data.atomic import atomic_path  # noqa: E402


def save_figure(figure, path, dpi=120):
    """Writes ``figure`` to ``path`` as a PNG (a temporary file renamed into place, so an
    error leaves no half-written file) and closes it; returns ``path``."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return path
