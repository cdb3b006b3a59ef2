"""Delimited raw files -> rows of stripped fields with their line numbers, and the checks on them."""

import csv
import re
from typing import List, Optional, Sequence, Tuple

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


def read_rows(path: str, sep: str, has_header: bool,
               quoting=None) -> Tuple[Optional[List[str]], List[List[str]], List[int]]:
    """Read a delimited text file. Returns (header or None, rows of stripped fields, 1-based line numbers).

    Blank lines are skipped. Tab-separated files are read without quote handling (as RecBole does).
    """
    if quoting is None:
        quoting = csv.QUOTE_NONE if sep == '\t' else csv.QUOTE_MINIMAL
    header = None
    rows: List[List[str]] = []
    lines: List[int] = []
    try:
        with open(path, 'r', encoding='utf-8-sig', newline='') as f:
            reader = csv.reader(f, delimiter=sep, quoting=quoting, strict=False)
            for rec in reader:
                if not rec or (len(rec) == 1 and rec[0].strip() == ''):
                    continue
                rec = [x.strip() for x in rec]
                if has_header and header is None:
                    header = rec
                    continue
                rows.append(rec)
                lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise ScenarioDataError(f'{path}: not a UTF-8 text file ({e}). Convert it to UTF-8.') from None
    except csv.Error as e:
        raise ScenarioDataError(f'{path}: cannot parse the file as {sep!r}-separated text ({e}).') from None
    return header, rows, lines


def check_field_counts(path: str, rows: List[List[str]], lines: List[int], expected: Sequence[int],
                        what: str, sep: str) -> None:
    bad = [i for i, r in enumerate(rows) if len(r) not in expected]
    if not bad:
        return
    i = bad[0]
    n = len(rows[i])
    exp = ' or '.join(str(e) for e in expected)
    hint = ''
    if n == 1:
        hint = f' Only one field was found: is the file really {sep_name(sep)}-separated?'
    raise ScenarioDataError(
        f'{path}, line {lines[i]}: expected {exp} {sep_name(sep)}-separated fields ({what}), found {n}: '
        f'{rows[i][:6]!r}.{hint} ({len(bad)} malformed line(s) in total.)'
    )


def sep_name(sep: str) -> str:
    return {'\t': 'tab', ',': 'comma', ';': 'semicolon', '|': 'pipe', ' ': 'space'}.get(sep, repr(sep))


def to_float(values: List[str], path: str, lines: List[int], column: str, allow_empty: bool = False) -> np.ndarray:
    """Finite numbers (``inf`` / ``nan`` parse as floats but are no rating, id or time); empty -> NaN if allowed."""
    s = pd.Series(values, dtype=object)
    num = pd.to_numeric(s, errors='coerce').to_numpy(dtype=np.float64)
    bad = ~np.isfinite(num)
    if allow_empty:
        bad &= (s != '').to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScenarioDataError(
            f'{path}, line {lines[i]}: the {column} value {values[i]!r} is not a finite number '
            f'({int(bad.sum())} such line(s)). Fix or remove those lines.'
        )
    return num


def to_int_ids(values: List[str], path: str, lines: List[int], column: str) -> np.ndarray:
    arr = to_float(values, path, lines, column)
    bad = (arr < 0) | (arr != np.floor(arr))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScenarioDataError(
            f'{path}, line {lines[i]}: the {column} {values[i]!r} is not a non-negative integer id.'
        )
    return arr.astype(np.int64)


def check_tokens(tokens: pd.Series, path: str, lines: Sequence[int], column: str) -> None:
    empty = (tokens == '').to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise ScenarioDataError(f'{path}, line {lines[i]}: empty {column} id.')
    bad = tokens.str.contains(_FORBIDDEN_TOKEN_CHARS).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScenarioDataError(
            f'{path}, line {lines[i]}: the {column} id {tokens.iloc[i]!r} contains a tab, newline or double '
            f'quote, which RecBole atomic files cannot hold.'
        )


def check_user_tokens(tokens: pd.Series, path: str, lines: Sequence[int]) -> None:
    check_tokens(tokens, path, lines, 'user')
    na = tokens.isin(_PANDAS_NA_STRINGS).to_numpy()
    if na.any():
        i = int(np.flatnonzero(na)[0])
        raise ScenarioDataError(
            f'{path}, line {lines[i]}: the user id {tokens.iloc[i]!r} would be read as a missing value by '
            f'RecBole (pandas NA string). Rename that user in the raw file.'
        )
