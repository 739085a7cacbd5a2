# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Ctrl-C and SIGTERM acted on between items, not wherever they land."""
import contextlib
import os
import signal
import sys
import threading

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + the signal's number, as shells report


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's pre-emption), handled as Ctrl-C is."""


def _interruption(signum):
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def exit_code(interruption):
    """The exit code for a caught KeyboardInterrupt: 143 after SIGTERM, else 130."""
    return EXIT_TERMINATED if isinstance(interruption, Terminated) else EXIT_INTERRUPTED


@contextlib.contextmanager
def _handlers(handler):
    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield False
        return
    try:
        yield True
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# After SIGTERM, a run that has not reached its next check by then (a read stuck on a network
# file system, a batch of huge images) ends at once, as Ctrl-C pressed twice would.
TERM_GRACE_SECONDS = 10.0


def _end_now(signum, message="interrupted; no output was written"):
    """Ends the process at once (130, or 143 after SIGTERM), after deleting the temporary files
    in use (:func:`~metrics.lpips.data.atomic.remove_pending`)."""
    from ..data.atomic import remove_pending
    remove_pending()
    os.write(sys.stderr.fileno(), "ERROR: {}\n".format(message).encode())
    os._exit(EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED)


@contextlib.contextmanager
def ctrl_c_between_items():
    """Yields a function that raises KeyboardInterrupt (:class:`Terminated` after SIGTERM)
    once Ctrl-C has been pressed or SIGTERM received, for a loop to call between items. Raised
    wherever it lands, it can land inside the lock the main thread waits on for a decoder,
    and CPython then fails with "cannot release un-acquired lock" (seen in CI). A second
    signal interrupts at once, and so does SIGTERM's own grace period running out
    (``TERM_GRACE_SECONDS``). One that came after the loop's last check (during the last
    batch) is raised when the block ends, so that nothing is written."""
    pressed, raised, timers = [], [], []

    def on_signal(signum, frame):
        if pressed:
            raise _interruption(signum)
        pressed.append(signum)
        if signum == signal.SIGTERM:  # nobody is there to press twice: a stuck read must end
            timers.append(threading.Timer(TERM_GRACE_SECONDS, _end_now, (signum,)))
            timers[-1].daemon = True
            timers[-1].start()

    def stop_if_pressed():
        if pressed:
            raised.append(True)
            raise _interruption(pressed[0])

    try:
        with _handlers(on_signal):
            yield stop_if_pressed
            if not raised:
                stop_if_pressed()
    finally:
        for timer in timers:
            timer.cancel()


@contextlib.contextmanager
def exit_at_once(message="interrupted"):
    """Ctrl-C and SIGTERM end the process at once (130, 143), after deleting the temporary
    files in use (:func:`~metrics.lpips.data.atomic.remove_pending`): for set-up, whose
    seconds-long ONNX export should not make Ctrl-C wait, and which runs inside h5py and
    NNabla's converter, where a KeyboardInterrupt can leave a lock held and the process hung
    at exit (measured: 1 of 20 interrupted h5py reads never exited)."""
    def on_signal(signum, frame):
        _end_now(signum, message)

    with _handlers(on_signal):
        yield


@contextlib.contextmanager
def interrupted_at_once():
    """Ctrl-C and SIGTERM raise where they land (KeyboardInterrupt, :class:`Terminated`), for
    pure-Python work with no decoder threads whose clean-up runs in ``finally`` blocks (a
    download and its unpacking)."""
    def on_signal(signum, frame):
        raise _interruption(signum)

    with _handlers(on_signal):
        yield
