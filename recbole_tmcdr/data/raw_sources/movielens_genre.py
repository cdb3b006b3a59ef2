"""ml-100k (shipped inside recbole) split into two item domains by genre: the embedded default scenario."""

import os

import numpy as np
import pandas as pd

from recbole_tmcdr.data.raw_sources.common import (
    Converter, DomainPair, ScenarioDataError, check_overlap, check_threshold, normalise_domain, require_file,
)
from recbole_tmcdr.data.raw_sources.tables import read_table


# The ml-100k genres with which the embedded default splits items: "thrill" genres vs everything else.
ML_DEFAULT_SOURCE_GENRES = ['Action', 'Adventure', 'Crime', 'Fantasy', 'Horror', 'Mystery', 'Sci-Fi',
                            'Thriller', 'War', 'Western']


def recbole_ml100k_dir() -> str:
    """Directory of the ml-100k atomic files shipped inside the installed ``recbole`` package."""
    import recbole
    return os.path.join(os.path.dirname(recbole.__file__), 'dataset_example', 'ml-100k')


class MovielensGenreConverter(Converter):
    type_name = 'movielens_genre'
    required_keys = ()
    defaults = {'source_genres': list(ML_DEFAULT_SOURCE_GENRES), 'min_rating': 4, 'source': 'src', 'target': 'tgt'}
    doc = ('movielens_genre splits the ml-100k shipped with recbole into two item domains by genre: source = '
           'movies having any of source_genres, target = all other movies; ratings >= min_rating (default 4) are '
           'kept as positive feedback; keys: source_genres, min_rating, source / target (domain names).')

    def validate(self, scenario):
        g = scenario['source_genres']
        if isinstance(g, str):
            g = [g]
        if not isinstance(g, (list, tuple)) or not g or not all(isinstance(x, str) for x in g):
            raise ScenarioDataError(f'scenario.source_genres must be a non-empty list of genre names, got {g!r}.')
        scenario['source_genres'] = sorted(set(g))
        check_threshold(scenario['min_rating'], 'min_rating')

    def raw_files(self, scenario, raw_data_path):
        d = recbole_ml100k_dir()
        hint = 'It ships with the `recbole` package; reinstall recbole==1.0.1 (`make install`).'
        return [
            require_file(os.path.join(d, f), 'the embedded default scenario (movielens_genre) reads it', None, hint,
                          uses_raw_data_path=False)
            for f in ('ml-100k.inter', 'ml-100k.item')
        ]

    def load(self, scenario, raw_data_path):
        inter_path, item_path = self.raw_files(scenario, raw_data_path)
        table = read_table(item_path, '\t', has_header=True)
        names = [h.split(':')[0] for h in (table.header or [])]
        genre_col = next((c for c in ('class', 'genre') if c in names), None)
        if 'item_id' not in names or genre_col is None:
            raise ScenarioDataError(
                f'{item_path}: expected columns item_id and class (genres), header is {table.header}.')
        table.check_field_counts((len(names),), f'header {names}')
        ii, gi = names.index('item_id'), names.index(genre_col)
        item_genres = {i: set(g.split()) for i, g in zip(table.column(ii), table.column(gi))}
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

        table = read_table(inter_path, '\t', has_header=True)
        names = [h.split(':')[0] for h in (table.header or [])]
        for c in ('user_id', 'item_id', 'rating', 'timestamp'):
            if c not in names:
                raise ScenarioDataError(f'{inter_path}: missing column {c!r}; header is {table.header}.')
        table.check_field_counts((len(names),), f'header {names}')
        ui, ii, ri, ti = (names.index(c) for c in ('user_id', 'item_id', 'rating', 'timestamp'))
        users, items = table.column(ui), table.column(ii)
        rating = table.numbers(table.column(ri), 'rating')
        ts = table.numbers(table.column(ti), 'timestamp', allow_empty=True)
        keep = rating >= scenario['min_rating'] if scenario['min_rating'] is not None else np.ones(len(table), bool)
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
        return check_overlap(pair, inter_path, inter_path)
