"""Delimited raw files -> a :class:`Table` of stripped string fields, each row with the line it ends on, and
the checks that name a bad value's file and line.

pandas' C parser reads the file (strict: every field a string, nothing turned into NaN, no blank line
skipped, a row longer than the first an error). Its frame is kept when it cannot hide anything: every row
has as many fields as the first and a non-empty last field (the C parser pads a short row with empty
strings, so a row ending in an empty field may be a short one), no field holds a line break (each row is
then one line), no line is longer than the csv module accepts for a field, and the file has no NUL byte
(the C parser cuts a field there). Any other file, and any file the C parser rejects, is read by the csv
module, which gives each row's field count and line as the error messages need them. On the files the
C parser keeps, both give the same table (tests/test_raw_tables.py).
"""

import csv
import io
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
import pandas as pd

from recbole_tmcdr.data.raw_sources.common import ScenarioDataError

# Strings that pandas (and therefore RecBole, which reads atomic files with pandas' default NA
# handling) turns into NaN: a user token equal to one of them would silently become a missing id.
_PANDAS_NA_STRINGS = frozenset([
    '', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>',
    'N/A', 'NA', 'NULL', 'NaN', 'None', 'n/a', 'nan', 'null',
])
_FORBIDDEN_TOKEN_CHARS = re.compile(r'[\t\r\n"]')
_SEP_NAMES = {'\t': 'tab', ',': 'comma', ';': 'semicolon', '|': 'pipe', ' ': 'space'}


def sep_name(sep: str) -> str:
    return _SEP_NAMES.get(sep, repr(sep))


@dataclass
class Table:
    """The non-blank rows of a delimited file after its header line (if it has one), fields stripped.

    ``fields`` has one column per field position; a row shorter than the longest holds None past its end.
    ``counts`` is each row's number of fields, ``lines`` the 1-based line on which each row ends.
    """

    path: str
    sep: str
    header: Optional[List[str]]
    fields: pd.DataFrame
    counts: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.fields)

    def column(self, j: int) -> pd.Series:
        return self.fields[j]

    def check(self, bad: np.ndarray, message: Callable[[int], str]) -> None:
        """Raise about the first row where ``bad`` holds, naming the file and the line; ``message(i)`` says what
        is wrong with row ``i``."""
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScenarioDataError(f'{self.path}, line {self.lines[i]}: {message(i)}')

    def check_field_counts(self, expected: Sequence[int], what: str) -> None:
        bad = ~np.isin(self.counts, expected)
        sep = sep_name(self.sep)

        def message(i):
            n = int(self.counts[i])
            hint = f' Only one field was found: is the file really {sep}-separated?' if n == 1 else ''
            return (f'expected {" or ".join(str(e) for e in expected)} {sep}-separated fields ({what}), found {n}: '
                    f'{self.fields.iloc[i, :min(n, 6)].tolist()!r}.{hint} ({int(bad.sum())} malformed line(s) in '
                    f'total.)')
        self.check(bad, message)

    def numbers(self, values: pd.Series, column: str, allow_empty: bool = False) -> np.ndarray:
        """Finite numbers (``inf`` / ``nan`` parse as floats but are no rating, id or time); empty -> NaN if allowed."""
        num = pd.to_numeric(values, errors='coerce').to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num)
        if allow_empty:
            bad &= (values != '').to_numpy()
        self.check(bad, lambda i: f'the {column} value {values.iloc[i]!r} is not a finite number '
                                  f'({int(bad.sum())} such line(s)). Fix or remove those lines.')
        return num

    def ids(self, values: pd.Series, column: str) -> np.ndarray:
        arr = self.numbers(values, column)
        self.check((arr < 0) | (arr != np.floor(arr)),
                   lambda i: f'the {column} {values.iloc[i]!r} is not a non-negative integer id.')
        return arr.astype(np.int64)

    def tokens(self, values: pd.Series, column: str) -> pd.Series:
        """``values`` once checked as ``column`` ('user' or 'item') ids that RecBole atomic files can hold."""
        self.check((values == '').to_numpy(), lambda i: f'empty {column} id.')
        self.check(values.str.contains(_FORBIDDEN_TOKEN_CHARS).to_numpy(),
                   lambda i: f'the {column} id {values.iloc[i]!r} contains a tab, newline or double quote, which '
                             f'RecBole atomic files cannot hold.')
        if column == 'user':
            self.check(values.isin(_PANDAS_NA_STRINGS).to_numpy(),
                       lambda i: f'the user id {values.iloc[i]!r} would be read as a missing value by RecBole '
                                 f'(pandas NA string). Rename that user in the raw file.')
        return values


def read_table(path: str, sep: str, has_header: bool) -> Table:
    """Read a delimited text file. Tab-separated files are read without quote handling (as RecBole does)."""
    quoting = csv.QUOTE_NONE if sep == '\t' else csv.QUOTE_MINIMAL
    with open(path, 'rb') as f:
        data = f.read()
    frame = _read_with_pandas(data, sep, quoting)
    if frame is not None:
        counts = np.full(len(frame), frame.shape[1])
        lines = np.arange(1, len(frame) + 1)
    else:
        try:
            frame, counts, lines = _read_with_csv(data, sep, quoting)
        except UnicodeDecodeError as e:
            raise ScenarioDataError(f'{path}: not a UTF-8 text file ({e}). Convert it to UTF-8.') from None
        except csv.Error as e:
            raise ScenarioDataError(f'{path}: cannot parse the file as {sep!r}-separated text ({e}).') from None
    frame = frame.apply(lambda col: col.str.strip())
    keep = counts > 1
    if frame.shape[1]:
        keep |= (counts == 1) & (frame[0] != '').to_numpy()  # one field: blank if it is empty or spaces only
    header = None
    if has_header and keep.any():
        h = int(np.flatnonzero(keep)[0])
        header = frame.iloc[h, :counts[h]].tolist()
        keep[h] = False
    return Table(path, sep, header, frame[keep].reset_index(drop=True), counts[keep], lines[keep])


def _read_with_pandas(data: bytes, sep: str, quoting: int) -> Optional[pd.DataFrame]:
    """The C parser's frame of ``data``, or None where it could differ from the csv module's rows."""
    limit = csv.field_size_limit()
    if b'\0' in data or (len(data) > limit and max(map(len, data.splitlines())) > limit):
        return None
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, quoting=quoting, header=None, dtype=str, na_filter=False,
                            skip_blank_lines=False, encoding='utf-8-sig', engine='c', on_bad_lines='error')
    except ValueError:  # a row longer than the first, an open quote, no field at all, not UTF-8
        return None
    short = (frame[frame.columns[-1]] == '').any()
    line_break = quoting != csv.QUOTE_NONE and any(frame[c].str.contains('[\r\n]').any() for c in frame)
    return None if short or line_break else frame


def _read_with_csv(data: bytes, sep: str, quoting: int):
    """Every record of ``data`` as the csv module reads it: (fields frame, field counts, end lines)."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding='utf-8-sig', newline='')
    reader = csv.reader(text, delimiter=sep, quoting=quoting, strict=False)
    records = [(rec, reader.line_num) for rec in reader]
    counts = np.array([len(rec) for rec, _ in records], dtype=np.int64)
    lines = np.array([line for _, line in records], dtype=np.int64)
    return pd.DataFrame([rec for rec, _ in records]), counts, lines
