"""Where a training run is, for whoever follows it (the benchmark shows each running trial's phase and epoch).

The plugin's trainers call :func:`report` once per epoch with the phase (``SOURCE``, ``OVERLAP``, ...), the
bridge stage (``None`` while pre-training; ``'bridge'``, or TMCDR's ``'warm_start'`` / ``'meta'``), the epoch
(from 1) and the phase's epoch budget. :func:`listening` installs a listener, in the process that trains, for
the duration of a block; without one, :func:`report` does nothing.
"""

import contextlib

_listeners = []


@contextlib.contextmanager
def listening(listener):
    """Call ``listener(where)`` (a dict: phase, stage, epoch, epochs) at every epoch trained inside the block."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def report(**where):
    for listener in tuple(_listeners):
        listener(where)
