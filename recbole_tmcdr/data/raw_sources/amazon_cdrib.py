"""Amazon pairs as released by CDRIB: <raw_data_path>/amazon_cdrib/<X>_<Y>/{train,valid,test}.txt."""

import glob
import logging
import os
import re
from typing import Optional

import numpy as np
import pandas as pd

from recbole_tmcdr.data.raw_sources.common import (
    Converter, DomainPair, ScenarioDataError, check_overlap, normalise_domain, require_file, require_raw_data_path,
)
from recbole_tmcdr.data.raw_sources.tables import read_table

logger = logging.getLogger(__name__)


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


class AmazonCdribConverter(Converter):
    type_name = 'amazon_cdrib'
    required_keys = ('source', 'target')
    defaults = {'n_common': None}
    same_domains_error = 'scenario.source and scenario.target must be different Amazon domains.'
    doc = ('amazon_cdrib reads <raw_data_path>/amazon_cdrib/<X>_<Y>/{train,valid,test}.txt for both domains '
           '(tab-separated user, item); keys: source, target (game|video, cloth|sport), optional n_common '
           '(number of shared user ids; default: from the *_data_info.txt that matches the data, else the '
           'known value of the pair).')
    split_files = ('train.txt', 'valid.txt', 'test.txt')

    def validate(self, scenario):
        n = scenario['n_common']
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ScenarioDataError(f'scenario.n_common must be a positive integer or null, got {n!r}.')

    def _folder(self, raw_data_path, x, y):
        root = require_raw_data_path(raw_data_path, self.type_name)
        return os.path.join(root, 'amazon_cdrib', f'{x}_{y}')

    def _domain_files(self, scenario, raw_data_path, key):
        x = scenario[key]
        y = scenario['target' if key == 'source' else 'source']
        folder = self._folder(raw_data_path, x, y)
        return [
            require_file(os.path.join(folder, f), f'it holds {f[:-4]} interactions of the {x!r} domain '
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
            table = read_table(path, '\t', has_header=False)
            if not len(table):
                continue  # an empty valid/test file is allowed; an empty domain is caught below
            table.check_field_counts((2,), 'user, item')
            users.append(table.ids(table.column(0), 'user id'))
            items.append(table.ids(table.column(1), 'item id'))
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
        return check_overlap(pair, where_s, where_t)
