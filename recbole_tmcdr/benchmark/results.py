"""``results.jsonl``: one JSON line per finished (scenario, model, seed), appended atomically.

A line is written with ONE ``os.write`` on an ``O_APPEND`` descriptor, then ``fsync``: a crash leaves at most
a truncated last line, which loading ignores with a :class:`ResultsFileWarning` (and which the runner moves
aside before it appends, so that the next line does not glue onto it).
"""

import json
import math
import os
import time
import warnings

RESULTS_FILE = 'results.jsonl'
ERRORS_FILE = 'errors.jsonl'


class ResultsFileWarning(UserWarning):
    """A truncated or unreadable line in a results file (ignored)."""


def to_jsonable(value):
    """Plain JSON: numpy/torch scalars to Python numbers, NaN/inf to None, dict keys to strings."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, 'item') and callable(value.item):  # numpy / torch scalar
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            return str(value)
        return to_jsonable(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def append_record(path, record):
    """Append one JSON line atomically (single write + flush + fsync on an O_APPEND file)."""
    line = (json.dumps(to_jsonable(record), sort_keys=False, allow_nan=False) + '\n').encode('utf-8')
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f'short write to {path}: {written} of {len(line)} bytes')
        os.fsync(fd)
    finally:
        os.close(fd)


def load_records(path, warn=True):
    """The records of a results file, in file order. A truncated last line (no newline or not JSON) and any
    unreadable line are ignored, with a :class:`ResultsFileWarning`."""
    if not os.path.exists(path):
        return []
    with open(path, 'rb') as f:
        data = f.read()
    records = []
    lines = data.split(b'\n')
    complete, tail = lines[:-1], lines[-1]  # tail: the text after the last newline ('' if none)
    for number, raw in enumerate(complete, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if warn:
                warnings.warn(f'{path}: line {number} is not valid JSON; ignored.', ResultsFileWarning, stacklevel=2)
            continue
        if isinstance(record, dict):
            records.append(record)
    if tail.strip():
        if warn:
            warnings.warn(f'{path}: the last line is truncated ({len(tail)} bytes without a newline, probably an '
                          'interrupted write); ignored.', ResultsFileWarning, stacklevel=2)
    return records


def repair_truncated_tail(path):
    """Move a truncated last line (bytes after the last newline) to ``<path>.truncated-<time>`` and cut it off,
    so that the next appended line starts on a line of its own. Returns the moved bytes (or b'')."""
    if not os.path.exists(path):
        return b''
    with open(path, 'rb+') as f:
        data = f.read()
        cut = data.rfind(b'\n') + 1
        tail = data[cut:]
        if not tail:
            return b''
        with open(f'{path}.truncated-{time.strftime("%Y%m%d-%H%M%S")}', 'wb') as aside:
            aside.write(tail)
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    return tail


def run_key(record):
    return (str(record.get('scenario')), str(record.get('model')), int(record.get('seed')))


def keyed_records(records, warn=True):
    """The records that name their (scenario, model, seed); any other line is skipped with a warning (it cannot
    be resumed or reported)."""
    keyed = []
    for number, record in enumerate(records, 1):
        try:
            run_key(record)
        except (TypeError, ValueError, OverflowError):
            if warn:
                warnings.warn(f'results record {number} has no valid scenario/model/seed '
                              f'(seed {record.get("seed")!r}); ignored.', ResultsFileWarning, stacklevel=2)
            continue
        keyed.append(record)
    return keyed


def latest_records(records):
    """The last record of each (scenario, model, seed), in the order keys first appear."""
    latest = {}
    for record in keyed_records(records, warn=False):
        latest[run_key(record)] = record
    return list(latest.values())
