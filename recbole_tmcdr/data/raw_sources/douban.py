"""Douban: <raw_data_path>/douban/<domain>_ratings.dat, tab-separated user, item, rating (no header)."""

import os

import numpy as np
import pandas as pd

from recbole_tmcdr.data.raw_sources.common import (
    Converter, DomainPair, ScenarioDataError, check_overlap, check_threshold, normalise_domain, require_file,
    require_raw_data_path,
)
from recbole_tmcdr.data.raw_sources.tables import read_table


class DoubanConverter(Converter):
    type_name = 'douban'
    required_keys = ('source', 'target')
    defaults = {'rating_threshold': None}
    same_domains_error = 'scenario.source and scenario.target must be different Douban domains.'
    doc = ('douban reads <raw_data_path>/douban/<domain>_ratings.dat (tab-separated user, item, rating; no '
           'header); keys: source, target (e.g. music, book), optional rating_threshold.')

    def validate(self, scenario):
        check_threshold(scenario['rating_threshold'], 'rating_threshold')

    def _path(self, raw_data_path, domain):
        root = require_raw_data_path(raw_data_path, self.type_name)
        return os.path.join(root, 'douban', f'{domain}_ratings.dat')

    def raw_files(self, scenario, raw_data_path):
        out = []
        for key in ('source', 'target'):
            d = scenario[key]
            out.append(require_file(
                self._path(raw_data_path, d), f'it holds the Douban {d!r} ratings (scenario.{key} = {d!r})',
                raw_data_path))
        return out

    def _read(self, path, domain, threshold):
        table = read_table(path, '\t', has_header=False)
        if not len(table):
            raise ScenarioDataError(f'{path}: the file is empty; expected tab-separated lines "user item rating".')
        table.check_field_counts((3,), 'user, item, rating')
        users = table.tokens(table.column(0), 'user')
        items = table.tokens(table.column(1), 'item')
        rating = table.numbers(table.column(2), 'rating')
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
        return check_overlap(pair, src_path, tgt_path)
