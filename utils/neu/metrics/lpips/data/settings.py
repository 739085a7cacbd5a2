# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Comparing the settings a saved run (a journal, a checkpoint) was made with to this run's."""


def differences(here, there):
    """``"key: value here, value there"`` for every key whose values differ, joined by commas,
    sorted by key; an empty string when none does."""
    keys = sorted(k for k in set(here) | set(there) if here.get(k) != there.get(k))
    return ", ".join("{}: {} here, {} there".format(k, here.get(k), there.get(k)) for k in keys)
