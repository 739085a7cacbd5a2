# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""A training run's per-epoch log as the NNabla examples keep theirs (``nnabla.monitor``
series files) and as a figure (``curves.png``)."""
import os
import shutil
import tempfile

MONITOR = "monitor"
CURVES = "curves.png"
_NOT_SERIES = ("epoch", "seconds")


def series_name(column):
    """A log column's series name: spaces and slashes are not file names' business."""
    return column.replace("/", "_").replace(" ", "-")


def write_monitor_series(out, log):
    """``OUT/monitor/<column>.series.txt`` for every numeric column of ``log`` (one dict per
    epoch), indexed by epoch, written by ``nnabla.monitor.MonitorSeries``. They are made anew
    from the whole log each time (a resumed run's series continue, where MonitorSeries alone
    would start its files over) in a temporary folder, then moved into place."""
    from nnabla.monitor import Monitor, MonitorSeries
    folder = os.path.join(out, MONITOR)
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".series-", dir=folder)
    try:
        columns = list(dict.fromkeys(k for row in log for k in row if k not in _NOT_SERIES))
        monitor = Monitor(tmp)
        for column in columns:
            series = MonitorSeries(series_name(column), monitor, verbose=False)
            for row in log:
                if row.get(column) is not None:
                    series.add(row["epoch"], row[column])
        for name in os.listdir(tmp):
            os.replace(os.path.join(tmp, name), os.path.join(folder, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def plot_curves(log, path, best=None):
    """The run's loss, agreement (training, and each validation set's score) and learning
    rate per epoch, ``best`` (an epoch) marked, as a PNG at ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..data.atomic import atomic_path
    epochs = [row["epoch"] for row in log]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(epochs, [row["loss"] for row in log], color="C0")
    axes[0].set_title("training loss")
    axes[1].plot(epochs, [row["accuracy"] for row in log], color="C0", label="training")
    scored = [k for k in dict.fromkeys(k for row in log for k in row) if k.startswith("2afc ")]
    for k, column in enumerate(scored):
        points = [(row["epoch"], row[column]) for row in log if column in row]
        axes[1].plot(*zip(*points), color="C{}".format(k + 1), marker=".",
                     label=column[len("2afc "):])
    axes[1].set_title("2AFC agreement")
    axes[1].legend(fontsize="small")
    axes[2].plot(epochs, [row["lr"] for row in log], color="C0")
    axes[2].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if best is not None:
            ax.axvline(best, color="grey", linestyle="--", linewidth=1)
    if best is not None:
        axes[1].set_title("2AFC agreement (best: epoch {})".format(best))
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
