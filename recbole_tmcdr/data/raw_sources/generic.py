"""Generic: two delimited files with a header line (CSV / TSV, or RecBole atomic .inter files)."""

import os
from typing import Optional

import numpy as np
import pandas as pd

from recbole_tmcdr.data.raw_sources.common import (
    RAW_DATA_PATH_HINT, Converter, DomainPair, ScenarioDataError, check_overlap, check_threshold, normalise_domain,
    require_file,
)
from recbole_tmcdr.data.raw_sources.tables import read_table, sep_name

# RecBole atomic-file field types (a header field is ``name:type``).
_RECBOLE_TYPES = ('token', 'token_seq', 'float', 'float_seq')


def _parse_sep(value, path: Optional[str] = None) -> Optional[str]:
    if value is None or value == 'auto':
        return None
    aliases = {'\\t': '\t', 'tab': '\t', 'TAB': '\t', 'comma': ',', 'space': ' ', 'semicolon': ';', 'pipe': '|'}
    value = aliases.get(value, value)
    if not isinstance(value, str) or len(value) != 1:
        raise ScenarioDataError(
            f'scenario.sep = {value!r} is not a single character; use auto, ",", "\\t" (or tab), ";" or "|".')
    return value


class GenericConverter(Converter):
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
        _parse_sep(scenario['sep'])
        check_threshold(scenario['rating_threshold'], 'rating_threshold')
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
        return require_file(p, f'it is scenario.{key}', raw_data_path,
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
        table = read_table(path, sep, has_header=True)
        header = table.header
        if header is None:
            raise ScenarioDataError(f'{path}: the file is empty; expected a header line and interactions.')
        names = []
        for h in header:
            base, _, typ = h.rpartition(':')
            names.append(base if base and typ in _RECBOLE_TYPES else h)
        if len(names) == 1:
            raise ScenarioDataError(
                f'{path}, line 1: the header {header[0][:80]!r} has a single column with separator '
                f'{sep_name(sep)}: wrong separator? Set `sep:` under `scenario:` (auto, ",", "\\t", ";", "|").')
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
        table.check_field_counts((len(names),), f'header {names}')
        if not len(table):
            raise ScenarioDataError(f'{path}: the file has a header but no interactions.')
        users = table.tokens(table.column(roles['user']), 'user')
        items = table.tokens(table.column(roles['item']), 'item')
        ts = np.full(len(table), np.nan)
        if 'timestamp' in roles:
            ts = self._timestamps(table, table.column(roles['timestamp']), names[roles['timestamp']])
        keep = np.ones(len(table), dtype=bool)
        if 'rating' in roles:
            rating = table.numbers(table.column(roles['rating']), f'rating ({names[roles["rating"]]})')
            if scenario['rating_threshold'] is not None:
                keep = rating >= scenario['rating_threshold']
        df = pd.DataFrame({'user': users, 'item': domain + ':' + items, 'timestamp': ts})[keep]
        return normalise_domain(df, f'{path} (rating_threshold={scenario["rating_threshold"]})')

    @staticmethod
    def _timestamps(table, values, column):
        empty = (values == '').to_numpy()
        first = values[~empty].iloc[:1]
        if np.isfinite(pd.to_numeric(first, errors='coerce')).all():
            # a column of numbers (its first value is one, or it is empty): a value that is not one is the error
            return table.numbers(values, f'timestamp ({column})', allow_empty=True)
        # not numeric: try date/time strings -> seconds since the epoch
        dt = pd.to_datetime(values.where(~empty, None), errors='coerce', utc=True, format='mixed')
        table.check(dt.isna().to_numpy() & ~empty,
                    lambda i: f'the timestamp ({column}) value {values.iloc[i]!r} is neither a number nor a '
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
        return check_overlap(pair, src_path, tgt_path)
