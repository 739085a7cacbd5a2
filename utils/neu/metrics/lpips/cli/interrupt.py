# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Ctrl-C acted on between items, not wherever it lands."""
import contextlib
import signal


@contextlib.contextmanager
def ctrl_c_between_items():
    """Yields a function that raises KeyboardInterrupt once Ctrl-C has been pressed, for a
    loop to call between items. Raised wherever it lands, it can land inside the lock the
    main thread waits on for a decoder, and CPython then fails with "cannot release
    un-acquired lock" (seen in CI). A second Ctrl-C interrupts at once."""
    pressed = []

    def on_sigint(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)

    def stop_if_pressed():
        if pressed:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: Ctrl-C is not ours to handle
        yield stop_if_pressed
        return
    try:
        yield stop_if_pressed
    finally:
        signal.signal(signal.SIGINT, previous)
