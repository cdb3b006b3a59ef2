"""Data layer: converters, cold split, cached atomic files, error messages.

Everything runs on tiny synthetic raw files written into tmp_path, except the embedded ml-100k default
(shipped inside the recbole package) and the optional checks on the real raw data in ../shared/data.
"""

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recbole_tmcdr.data import (
    ScenarioDataError, available_scenario_types, load_domains, make_cold_split, prepare_scenario,
    read_atomic_inter,
)

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get('RECBOLE_TMCDR_RAW_DATA') or REPO.parent / 'shared' / 'data')


# ------------------------------------------------------------------------------------------------ helpers

def write(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def douban_raw(root, n_users=40, seed=0):
    """douban/{music,book}_ratings.dat: users 0..n-1 in both, 100+ only in music, 200+ only in book."""
    rng = np.random.default_rng(seed)
    for domain, extra in (('music', range(100, 104)), ('book', range(200, 205))):
        lines = []
        for u in list(range(n_users)) + list(extra):
            for i in rng.choice(30, size=4, replace=False):
                lines.append(f'{u}\t{i}\t{rng.integers(1, 6)}')
        write(Path(root) / 'douban' / f'{domain}_ratings.dat', '\n'.join(lines) + '\n')
    return Path(root)


def amazon_raw(root, with_info=True):
    """amazon_cdrib/{game_video,video_game}: ids 0..5 shared (n_common=6), ids >= 6 domain-only."""
    rows = {
        'game': {'train': [(0, 0), (0, 1), (1, 1), (2, 2), (3, 0), (6, 3), (7, 4), (7, 0)],
                 'valid': [(4, 2), (4, 3)], 'test': [(5, 1), (5, 4)]},
        'video': {'train': [(0, 0), (1, 1), (2, 0), (4, 2), (5, 1), (6, 2), (8, 0)],
                  'valid': [(3, 1)], 'test': [(3, 2)]},
    }
    for x, y in (('game', 'video'), ('video', 'game')):
        for split, rs in rows[x].items():
            write(Path(root) / 'amazon_cdrib' / f'{x}_{y}' / f'{split}.txt', ''.join(f'{u}\t{i}\n' for u, i in rs))
    if with_info:
        # Like the real release: one folder holds a log of ANOTHER run (must be ignored), the other the right one.
        write(Path(root) / 'amazon_cdrib' / 'game_video' / 'video_game_data_info.txt',
              'common user num 7\nafter filter_data1 info : 99 99 999 0.1\nafter filter_data2 info : 98 98 998 0.1\n')
        write(Path(root) / 'amazon_cdrib' / 'video_game' / 'game_video_data_info.txt',
              'common user num 6\nafter filter_data1 info : 8 5 12 0.3\nafter filter_data2 info : 9 3 9 0.3\n')
    return Path(root)


def generic_csv(root, n_users=30, seed=0):
    """Two CSVs with string ids, ratings and ISO dates; users u0..u{n-1} in both."""
    rng = np.random.default_rng(seed)
    for name, n_items in (('src.csv', 25), ('tgt.csv', 20)):
        lines = ['uid,iid,score,when']
        for u in range(n_users):
            for k, i in enumerate(rng.choice(n_items, size=5, replace=False)):
                lines.append(f'u{u},it{i},{rng.integers(1, 6)},2020-01-{(k * 7 + u) % 28 + 1:02d}')
        write(Path(root) / name, '\n'.join(lines) + '\n')
    return {'type': 'generic', 'source_file': 'src.csv', 'target_file': 'tgt.csv',
            'columns': {'user': 'uid', 'item': 'iid', 'rating': 'score', 'timestamp': 'when'}}


def douban_scenario(source='music', target='book'):
    return {'type': 'douban', 'source': source, 'target': target}


def prep(raw, cache, scenario=None, name='t', **kw):
    return prepare_scenario(name, scenario or douban_scenario(), raw_data_path=raw, cache_dir=cache, **kw)


def items_disjoint(pair):
    return not (set(pair.source['item']) & set(pair.target['item']))


# ------------------------------------------------------------------------------------------------ converters

def test_douban_converter_prefixes_binarises_and_collapses_duplicates(tmp_path):
    raw = douban_raw(tmp_path)
    # append a duplicated (user, item) pair with another rating
    with open(raw / 'douban' / 'book_ratings.dat', 'a') as f:
        f.write('0\t999\t5\n0\t999\t2\n')
    pair = load_domains(douban_scenario(), raw)
    assert list(pair.source.columns) == ['user', 'item', 'timestamp'] == list(pair.target.columns)
    assert pair.source['item'].str.startswith('music:').all() and pair.target['item'].str.startswith('book:').all()
    assert items_disjoint(pair)
    assert ((pair.target['user'] == '0') & (pair.target['item'] == 'book:999')).sum() == 1
    assert not pair.source.duplicated(['user', 'item']).any() and not pair.target.duplicated(['user', 'item']).any()
    assert pair.target['timestamp'].isna().all() and pair.target['timestamp'].dtype == np.float64
    assert {'100', '200'} <= set(pair.source['user']) | set(pair.target['user'])
    src, tgt = pair  # tuple-like unpacking
    assert len(src) == len(pair.source)


def test_douban_rating_threshold(tmp_path):
    raw = douban_raw(tmp_path)
    full = load_domains(douban_scenario(), raw)
    high = load_domains(dict(douban_scenario(), rating_threshold=4), raw)
    assert 0 < len(high.target) < len(full.target)


def test_amazon_cdrib_domain_only_users_are_prefixed(tmp_path, caplog):
    raw = amazon_raw(tmp_path)
    with caplog.at_level(logging.INFO, logger='recbole_tmcdr.data.raw_sources'):
        pair = load_domains({'type': 'amazon_cdrib', 'source': 'video', 'target': 'game'}, raw)
    assert 'n_common = 6' in caplog.text and 'describes other data' in caplog.text
    tgt_users, src_users = set(pair.target['user']), set(pair.source['user'])
    assert {'0', '1', '2', '3', '4', '5'} <= tgt_users and {'0', '1', '2', '3', '4', '5'} <= src_users
    assert {'game:6', 'game:7'} <= tgt_users and {'video:6', 'video:8'} <= src_users
    assert '6' not in tgt_users | src_users  # id 6 is a different person in each domain
    assert src_users & tgt_users == {'0', '1', '2', '3', '4', '5'}
    # all three split files are concatenated
    assert len(pair.target) == 12 and len(pair.source) == 9
    assert pair.target['item'].str.startswith('game:').all() and items_disjoint(pair)


def test_amazon_cdrib_n_common_fallbacks(tmp_path):
    raw = amazon_raw(tmp_path, with_info=False)
    # no info file -> the known value of the game/video pair (2179): every tiny id is then "shared"
    pair = load_domains({'type': 'amazon_cdrib', 'source': 'video', 'target': 'game'}, raw)
    assert not any(':' in u for u in pair.target['user'])
    pair = load_domains({'type': 'amazon_cdrib', 'source': 'video', 'target': 'game', 'n_common': 2}, raw)
    assert 'game:3' in set(pair.target['user']) and '1' in set(pair.target['user'])
    # unknown pair without info file -> clear error asking for n_common
    for x, y in (('book', 'toy'), ('toy', 'book')):
        for split in ('train', 'valid', 'test'):
            write(raw / 'amazon_cdrib' / f'{x}_{y}' / f'{split}.txt', '0\t0\n1\t1\n')
    with pytest.raises(ScenarioDataError, match='n_common'):
        load_domains({'type': 'amazon_cdrib', 'source': 'book', 'target': 'toy'}, raw)


def test_generic_csv_string_ids_dates_threshold_and_dedup(tmp_path):
    sc = generic_csv(tmp_path)
    # duplicate with an EARLIER date further down: the earliest timestamp is kept
    with open(tmp_path / 'tgt.csv', 'a') as f:
        f.write('u0,newitem,5,2020-03-01\nu0,newitem,5,2019-12-31\n')
    pair = load_domains(sc, tmp_path)
    assert pair.source['item'].str.startswith('src:').all() and pair.target['item'].str.startswith('tgt:').all()
    assert items_disjoint(pair) and pair.target['user'].str.startswith('u').all()
    dup = pair.target[(pair.target['user'] == 'u0') & (pair.target['item'] == 'tgt:newitem')]
    assert len(dup) == 1 and dup['timestamp'].iloc[0] == pd.Timestamp('2019-12-31', tz='UTC').timestamp()
    thr = load_domains(dict(sc, rating_threshold=4, source='a', target='b'), tmp_path)
    assert len(thr.target) < len(pair.target) and thr.target['item'].str.startswith('b:').all()


def test_generic_recbole_inter_files_and_absolute_paths(tmp_path):
    head = 'user_id:token\titem_id:token\trating:float\ttimestamp:float\n'
    s = write(tmp_path / 'a.inter', head + ''.join(f'{u}\t{i}\t1\t{u * 10 + i}\n' for u in range(6) for i in range(3)))
    t = write(tmp_path / 'b.inter',
              head + ''.join(f'{u}\t{i}\t1\t{u * 10 + i}\n' for u in range(3, 9) for i in range(2)))
    pair = load_domains({'type': 'generic', 'source_file': str(s), 'target_file': str(t)}, None)
    assert set(pair.source['user']) & set(pair.target['user']) == {'3', '4', '5'}
    assert pair.source['timestamp'].notna().all() and items_disjoint(pair)
    assert 'src:0' in set(pair.source['item']) and 'tgt:0' in set(pair.target['item'])


def test_movielens_genre_embedded_default():
    pair = load_domains({'type': 'movielens_genre'}, None)
    assert items_disjoint(pair)
    assert (len(pair.source), len(pair.target)) == (31231, 24144)  # ratings >= 4 of ml-100k: 55,375
    assert pair.source['user'].nunique() == 941 and pair.target['user'].nunique() == 931
    assert pair.source['item'].nunique() == 629 and pair.target['item'].nunique() == 818
    assert len(set(pair.source['user']) & set(pair.target['user'])) == 930
    assert pair.source['timestamp'].notna().all()
    allr = load_domains({'type': 'movielens_genre', 'min_rating': 1, 'source_genres': ['Drama']}, None)
    assert len(allr.source) + len(allr.target) == 100000
    with pytest.raises(ScenarioDataError, match='Sci-Fi'):  # the message lists the available genres
        load_domains({'type': 'movielens_genre', 'source_genres': ['Scifi']}, None)


def test_shipped_dataset_configs_are_valid():
    from recbole_tmcdr.data import normalise_scenario
    files = sorted((REPO / 'dataset_configs').glob('*.yaml'))
    names = {f.stem for f in files}
    assert {'ml_genre', 'douban_music_book', 'douban_book_music', 'amazon_video_game', 'amazon_game_video',
            'amazon_sport_cloth', 'amazon_cloth_sport'} <= names
    for f in files:
        cfg = yaml.safe_load(f.read_text())
        assert not [k for k in cfg if k.startswith(('source_', 'target_'))], f
        normalise_scenario(cfg['scenario'])  # raises on a bad key


# ------------------------------------------------------------------------------------------------ cold split

def _toy_domains(n=50, seed=0):
    rng = np.random.default_rng(seed)
    src, tgt = [], []
    for u in range(n + 5):
        for i in rng.choice(40, 5, replace=False):
            src.append((f'u{u}', f's:{i}', float(rng.integers(1000))))
    for u in list(range(n)) + list(range(100, 106)):
        for i in rng.choice(30, 6, replace=False):
            tgt.append((f'u{u}', f't:{i}', float(rng.integers(1000))))
    mk = lambda r: pd.DataFrame(r, columns=['user', 'item', 'timestamp'])  # noqa: E731
    return mk(src), mk(tgt)


def test_cold_split_no_leakage_and_counts():
    s, t = _toy_domains()
    sp = make_cold_split(s, t, cold_user_ratio=0.2, cold_valid_fraction=0.5, seed=1)
    cold = set(sp.cold_valid_users) | set(sp.cold_test_users)
    assert len(cold) == 10 and len(sp.cold_valid_users) == 5 == len(sp.cold_test_users)
    assert not set(sp.cold_valid_users) & set(sp.cold_test_users)
    assert not cold & set(sp.target_train['user'])                        # no leakage into target training
    assert set(sp.target_valid['user']) == set(sp.cold_valid_users)
    assert set(sp.target_test['user']) == set(sp.cold_test_users)
    assert len(sp.target_train) + len(sp.target_valid) + len(sp.target_test) == len(t)
    assert len(sp.source) == len(s) and cold <= set(sp.source['user'])   # cold users keep their source rows
    assert sp.stats['source_rows_cold_users'] == int(s['user'].isin(cold).sum())
    assert len(sp.warm_overlap_users) == 40 and not cold & set(sp.warm_overlap_users)
    assert sp.stats['n_overlap'] == 50 and sp.stats['n_warm_overlap'] == 40
    assert sp.cold_valid_users == sorted(sp.cold_valid_users)
    for df in (sp.target_valid, sp.target_test):  # per user in time order
        assert (df.groupby('user')['timestamp'].apply(lambda x: x.is_monotonic_increasing)).all()


def test_cold_split_reproducible_per_seed():
    s, t = _toy_domains()
    a = make_cold_split(s, t, seed=2022)
    b = make_cold_split(s, t, seed=2022)
    c = make_cold_split(s, t, seed=7)
    assert a.cold_test_users == b.cold_test_users and a.cold_valid_users == b.cold_valid_users
    assert a.target_train.equals(b.target_train)
    assert (a.cold_test_users, a.cold_valid_users) != (c.cold_test_users, c.cold_valid_users)


def test_cold_split_keeps_file_order_without_timestamps():
    t = pd.DataFrame({'user': ['b', 'a', 'b', 'a', 'c', 'd', 'e'], 'item': ['3', '1', '2', '9', '1', '1', '1'],
                      'timestamp': np.nan})
    s = pd.DataFrame({'user': list('abcde'), 'item': ['x'] * 5, 'timestamp': np.nan})
    sp = make_cold_split(s, t, cold_user_ratio=0.6, cold_valid_fraction=0.5, seed=0)
    both = pd.concat([sp.target_valid, sp.target_test])
    for u in ('a', 'b'):
        if u in set(both['user']):
            assert list(both[both['user'] == u]['item']) == list(t[t['user'] == u]['item'])


@pytest.mark.parametrize('ratio,frac,key', [
    (0.0, 0.5, 'cold_user_ratio'), (1.0, 0.5, 'cold_user_ratio'), (1.5, 0.5, 'cold_user_ratio'),
    (0.01, 0.5, 'cold_user_ratio'),  # 50 users * 0.01 -> 0 cold users
    (0.99, 0.5, 'cold_user_ratio'),  # no warm overlapping user left
    (0.2, 0.0, 'cold_valid_fraction'), (0.04, 0.5, 'cold_valid_fraction'),  # 2 cold users: ok; see below
])
def test_cold_split_bad_ratios(ratio, frac, key):
    s, t = _toy_domains()
    if (ratio, frac) == (0.04, 0.5):  # 2 cold users split 1/1 is fine
        make_cold_split(s, t, cold_user_ratio=ratio, cold_valid_fraction=frac)
        return
    with pytest.raises(ScenarioDataError, match=key):
        make_cold_split(s, t, cold_user_ratio=ratio, cold_valid_fraction=frac)


# ------------------------------------------------------------------------------------------------ prepare + cache

def test_prepare_writes_atomic_files(tmp_path):
    raw = douban_raw(tmp_path / 'raw')
    # an item read only by one user: if that user is cold, the item must still be in the target vocabulary
    p = prep(raw, tmp_path / 'cache', seed=3)
    d = Path(p.data_path)
    assert d.parent.parent == tmp_path / 'cache' and d.name == p.cache_key[:12]
    assert p.source_dataset == f't-{p.cache_key[:8]}-source' and p.target_dataset == f't-{p.cache_key[:8]}-target'
    src = d / p.source_dataset / f'{p.source_dataset}.inter'
    assert src.read_text().split('\n', 1)[0] == 'user_id:token\titem_id:token'  # no timestamp in Douban
    parts = {part: read_atomic_inter(p.inter_path(part)) for part in ('source', 'train', 'valid', 'test')}
    cold = set(p.cold_valid_users) | set(p.cold_test_users)
    assert not cold & set(parts['train']['user'])
    assert set(parts['valid']['user']) == set(p.cold_valid_users)
    assert set(parts['test']['user']) == set(p.cold_test_users)
    assert cold <= set(parts['source']['user'])
    items = (d / p.target_dataset / f'{p.target_dataset}.item').read_text().split('\n')
    assert items[0] == 'item_id:token'
    all_target = set(parts['train']['item']) | set(parts['valid']['item']) | set(parts['test']['item'])
    assert set(filter(None, items[1:])) == all_target and len(all_target) == p.stats['n_target_items']
    meta = json.loads((d / 'split.json').read_text())
    assert meta['cache_key'] == p.cache_key and len(meta['raw_files']) == 2
    assert p.stats['n_cold_valid'] == len(p.cold_valid_users) and p.stats['target_rows_test'] == len(parts['test'])
    assert not [x for x in os.listdir(d.parent) if x.startswith('.')]  # no temp dir left behind


def test_prepare_with_timestamps_and_cold_only_items(tmp_path):
    sc = generic_csv(tmp_path)
    with open(tmp_path / 'tgt.csv', 'a') as f:  # give every overlapping user a private target item
        f.writelines(f'u{u},private{u},5,2021-01-01\n' for u in range(30))
    p = prepare_scenario('g', sc, raw_data_path=tmp_path, cache_dir=tmp_path / 'c', seed=0)
    assert Path(p.inter_path('train')).read_text().startswith('user_id:token\titem_id:token\ttimestamp:float\n')
    assert p.target_has_timestamp and p.stats['target_items_only_cold'] >= 6  # 30 * 0.2 cold users
    items = set(Path(p.data_path, p.target_dataset, f'{p.target_dataset}.item').read_text().split()[1:])
    assert {f'tgt:private{u[1:]}' for u in p.cold_test_users} <= items
    test = read_atomic_inter(p.inter_path('test'))
    assert test.groupby('user')['timestamp'].apply(lambda x: x.is_monotonic_increasing).all()


def test_cache_hit_and_miss_on_raw_change(tmp_path):
    raw = douban_raw(tmp_path / 'raw')
    cache = tmp_path / 'cache'
    p1 = prep(raw, cache)
    marker = Path(p1.inter_path('train'))
    mtime = marker.stat().st_mtime_ns
    p2 = prep(raw, cache)
    assert p2.from_cache and not p1.from_cache and p2.cache_key == p1.cache_key
    assert marker.stat().st_mtime_ns == mtime and p2.cold_test_users == p1.cold_test_users
    # another seed or ratio: another key
    assert prep(raw, cache, seed=5).cache_key != p1.cache_key
    assert prep(raw, cache, cold_user_ratio=0.3).cache_key != p1.cache_key
    # change a raw file -> new key, rebuilt
    with open(raw / 'douban' / 'book_ratings.dat', 'a') as f:
        f.write('0\t777\t3\n')
    p3 = prep(raw, cache)
    assert p3.cache_key != p1.cache_key and not p3.from_cache and p3.stats['target']['interactions'] == \
        p1.stats['target']['interactions'] + 1


def test_a_split_made_by_other_code_is_not_reused(tmp_path, monkeypatch):
    from recbole_tmcdr.data import scenario
    raw = douban_raw(tmp_path / 'raw')
    p1 = prep(raw, tmp_path / 'cache')
    monkeypatch.setitem(scenario._PREPARATION_SHA, 'sha', 'another-version')
    p2 = prep(raw, tmp_path / 'cache')
    assert p2.cache_key != p1.cache_key and not p2.from_cache


@pytest.mark.parametrize('damage', ['truncate', 'delete_split_json', 'garble_split_json', 'extra_file'])
def test_corrupt_cache_is_rebuilt(tmp_path, caplog, damage):
    raw = douban_raw(tmp_path / 'raw')
    cache = tmp_path / 'cache'
    p1 = prep(raw, cache)
    d = Path(p1.data_path)
    if damage == 'truncate':
        f = Path(p1.inter_path('valid'))
        f.write_text(f.read_text()[:20])
    elif damage == 'delete_split_json':
        (d / 'split.json').unlink()
    elif damage == 'garble_split_json':
        (d / 'split.json').write_text('{"cache_key": ')
    else:
        write(d / p1.target_dataset / 'stray.inter', 'x')
    with caplog.at_level(logging.WARNING, logger='recbole_tmcdr.data.scenario'):
        p2 = prep(raw, cache)
    assert not p2.from_cache and 'rebuilding' in caplog.text
    assert read_atomic_inter(p2.inter_path('valid')).shape[0] == p1.stats['target_rows_valid']
    assert prep(raw, cache).from_cache
    assert not [x for x in os.listdir(d.parent) if x.startswith('.')]


def test_stale_temp_dirs_are_removed(tmp_path):
    raw = douban_raw(tmp_path / 'raw')
    p = prep(raw, tmp_path / 'cache')
    parent = Path(p.data_path).parent
    old, fresh = parent / '.tmp-crashed-old', parent / '.tmp-other-process-building'
    for d in (old, fresh):
        write(d / 'half.inter', 'user_id:token\n')
    os.utime(old, (1, 1))
    assert prep(raw, tmp_path / 'cache').from_cache
    assert not old.exists() and fresh.exists()  # a recent one may belong to a running build: kept


def test_concurrent_prepare_agrees(tmp_path):
    raw = douban_raw(tmp_path / 'raw')
    results, errors = [], []

    def run():
        try:
            results.append(prep(raw, tmp_path / 'cache'))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len({r.cache_key for r in results}) == 1
    assert len({tuple(r.cold_test_users) for r in results}) == 1
    parent = Path(results[0].data_path).parent
    assert os.listdir(parent) == [results[0].cache_key[:12]]
    assert prep(raw, tmp_path / 'cache').from_cache


# ------------------------------------------------------------------------------------------------ errors

def test_missing_raw_file_message(tmp_path):
    with pytest.raises(ScenarioDataError) as e:
        prep(tmp_path / 'nowhere', tmp_path / 'cache')
    msg = str(e.value)
    assert 'music_ratings.dat' in msg and str(tmp_path / 'nowhere' / 'douban') in msg
    assert 'raw_data_path' in msg and '--raw_data_path' in msg
    with pytest.raises(ScenarioDataError, match='raw_data_path'):
        prep(None, tmp_path / 'cache')
    amazon_raw(tmp_path / 'a')
    os.remove(tmp_path / 'a' / 'amazon_cdrib' / 'game_video' / 'test.txt')
    with pytest.raises(ScenarioDataError, match=r"'test.txt' not found in directory .*game_video.*raw_data_path"):
        load_domains({'type': 'amazon_cdrib', 'source': 'video', 'target': 'game'}, tmp_path / 'a')
    with pytest.raises(ScenarioDataError, match=r"'nope.csv' not found.*raw_data_path.*source_file"):
        load_domains({'type': 'generic', 'source_file': 'nope.csv', 'target_file': 'x.csv'}, tmp_path)


def test_unknown_type_and_unknown_key(tmp_path):
    with pytest.raises(ScenarioDataError) as e:
        prep(tmp_path, tmp_path / 'c', scenario={'type': 'doubann', 'source': 'music', 'target': 'book'})
    for t in available_scenario_types():
        assert t in str(e.value)
    assert set(available_scenario_types()) == {'douban', 'amazon_cdrib', 'generic', 'movielens_genre'}
    with pytest.raises(ScenarioDataError, match="'sourec'.*allowed keys"):
        load_domains({'type': 'douban', 'sourec': 'music', 'source': 'music', 'target': 'book'}, tmp_path)


def test_generic_missing_column(tmp_path):
    sc = generic_csv(tmp_path)
    sc['columns'] = dict(sc['columns'], item='item_id')
    with pytest.raises(ScenarioDataError) as e:
        load_domains(sc, tmp_path)
    assert 'src.csv' in str(e.value) and "'item_id'" in str(e.value) and 'uid' in str(e.value)
    write(tmp_path / 'x.csv', 'user_id,foo\n1,2\n')
    with pytest.raises(ScenarioDataError, match=r'x\.csv.*no item column'):
        load_domains({'type': 'generic', 'source_file': 'x.csv', 'target_file': 'x.csv'}, tmp_path)


def test_non_numeric_rating_names_file_and_line(tmp_path):
    raw = douban_raw(tmp_path)
    p = raw / 'douban' / 'book_ratings.dat'
    lines = p.read_text().split('\n')
    lines[4] = '3\t7\tfive'
    p.write_text('\n'.join(lines))
    with pytest.raises(ScenarioDataError, match=r"book_ratings\.dat, line 5: the rating value 'five'"):
        load_domains(douban_scenario(), raw)
    sc = generic_csv(tmp_path)
    with open(tmp_path / 'src.csv', 'a') as f:
        f.write('u1,x,good,2020-01-01\n')
    with pytest.raises(ScenarioDataError, match=r"src\.csv, line 152: .*'good'"):
        load_domains(sc, tmp_path)


def numeric_time_csv(root, bad_line, bad_field, value):
    """src.csv / tgt.csv with numeric timestamps (users u0..u4 in both); ``bad_field`` of line ``bad_line``
    of src.csv (1-based, the header is line 1) set to ``value``."""
    for name in ('src.csv', 'tgt.csv'):
        lines = ['uid,iid,score,when'] + [f'u{u},it{i},{1 + i},{1000 + 10 * u + i}' for u in range(5) for i in range(3)]
        if name == 'src.csv':
            fields = lines[bad_line - 1].split(',')
            fields[bad_field] = value
            lines[bad_line - 1] = ','.join(fields)
        write(Path(root) / name, '\n'.join(lines) + '\n')
    return {'type': 'generic', 'source_file': 'src.csv', 'target_file': 'tgt.csv',
            'columns': {'user': 'uid', 'item': 'iid', 'rating': 'score', 'timestamp': 'when'}}


@pytest.mark.parametrize('value', ['abc', '2020-01-01', 'inf', 'nan'])
def test_bad_timestamp_in_a_numeric_column_names_its_own_line(tmp_path, value):
    sc = numeric_time_csv(tmp_path, bad_line=5, bad_field=3, value=value)
    with pytest.raises(ScenarioDataError, match=rf"src\.csv, line 5: the timestamp \(when\) value '{value}'"):
        load_domains(sc, tmp_path)


@pytest.mark.parametrize('value', ['inf', '-inf', 'nan', 'Infinity'])
def test_non_finite_rating_is_rejected_with_file_and_line(tmp_path, value):
    sc = numeric_time_csv(tmp_path, bad_line=7, bad_field=2, value=value)
    with pytest.raises(ScenarioDataError, match=rf"src\.csv, line 7: the rating \(score\) value '{value}' is not a "
                                                r'finite number'):
        load_domains(sc, tmp_path)
    raw = douban_raw(tmp_path / 'd')
    path = raw / 'douban' / 'book_ratings.dat'
    lines = path.read_text().split('\n')
    lines[2] = f'3\t7\t{value}'
    path.write_text('\n'.join(lines))
    with pytest.raises(ScenarioDataError, match=r'book_ratings\.dat, line 3: the rating value'):
        load_domains(douban_scenario(), raw)


def test_a_date_column_still_reads_dates_and_names_a_bad_one(tmp_path):
    sc = generic_csv(tmp_path)
    with open(tmp_path / 'src.csv', 'a') as f:
        f.write('u1,x,3,not-a-date\n')
    with pytest.raises(ScenarioDataError, match=r"src\.csv, line 152: the timestamp \(when\) value 'not-a-date' "
                                                r'is neither a number nor a date'):
        load_domains(sc, tmp_path)


def test_malformed_separator_and_field_count(tmp_path):
    write(tmp_path / 'a.csv', 'user item\nu1 i1\n')
    write(tmp_path / 'b.csv', 'user,item\nu1,i1\n')
    with pytest.raises(ScenarioDataError, match=r'a\.csv, line 1: .*single column.*sep'):
        load_domains({'type': 'generic', 'source_file': 'a.csv', 'target_file': 'b.csv'}, tmp_path)
    with pytest.raises(ScenarioDataError, match=r'b\.csv, line 1: .*single column'):
        load_domains({'type': 'generic', 'source_file': 'b.csv', 'target_file': 'b.csv', 'sep': '\t'}, tmp_path)
    raw = douban_raw(tmp_path / 'd')
    p = raw / 'douban' / 'music_ratings.dat'
    p.write_text(p.read_text().replace('\t', ',', 3))
    with pytest.raises(ScenarioDataError, match=r'music_ratings\.dat, line 1: expected 3 tab-separated fields'):
        load_domains(douban_scenario(), raw)


def test_empty_domain_and_no_overlap(tmp_path):
    write(tmp_path / 'a.csv', 'user_id,item_id,rating\nu1,i1,1\nu2,i1,2\n')
    write(tmp_path / 'b.csv', 'user_id,item_id,rating\nv1,i1,5\nv2,i2,5\n')
    with pytest.raises(ScenarioDataError, match=r'No overlapping users.*a\.csv.*b\.csv'):
        load_domains({'type': 'generic', 'source_file': 'a.csv', 'target_file': 'b.csv'}, tmp_path)
    with pytest.raises(ScenarioDataError, match=r'a\.csv.*no interactions'):
        load_domains({'type': 'generic', 'source_file': 'a.csv', 'target_file': 'b.csv', 'rating_threshold': 3},
                     tmp_path)
    write(tmp_path / 'c.csv', 'user_id,item_id\n')
    with pytest.raises(ScenarioDataError, match=r'c\.csv.*no interactions'):
        load_domains({'type': 'generic', 'source_file': 'c.csv', 'target_file': 'b.csv'}, tmp_path)


def test_prepare_bad_cold_user_ratio(tmp_path):
    raw = douban_raw(tmp_path)
    for bad in (0, 1, -0.1, 'a'):
        with pytest.raises(ScenarioDataError, match='cold_user_ratio'):
            prep(raw, tmp_path / 'c', cold_user_ratio=bad)
    with pytest.raises(ScenarioDataError, match='cold_user_ratio'):
        prep(raw, tmp_path / 'c', cold_user_ratio=0.99)  # no warm overlapping user left
    with pytest.raises(ScenarioDataError, match='cold_valid_fraction'):
        prep(raw, tmp_path / 'c', cold_valid_fraction=1.0)


# ------------------------------------------------------------------------------------------------ real raw data

@pytest.mark.skipif(not (REAL_DATA / 'douban' / 'book_ratings.dat').is_file(), reason='no ../shared/data/douban')
def test_real_douban_counts(tmp_path):
    p = prepare_scenario('douban_music_book', douban_scenario(), raw_data_path=REAL_DATA, cache_dir=tmp_path,
                         seed=2022, cold_user_ratio=0.2, cold_valid_fraction=0.5)
    s = p.stats
    assert s['n_overlap'] == 1566
    assert s['source'] == {'users': 1672, 'items': 5567, 'interactions': 69709}
    assert s['target'] == {'users': 2110, 'items': 6777, 'interactions': 96041}
    assert (s['n_cold_valid'], s['n_cold_test'], s['n_warm_overlap']) == (156, 157, 1253)
    assert s['target_rows_train'] + s['target_rows_valid'] + s['target_rows_test'] == 96041
    assert s['n_target_items'] == 6777


@pytest.mark.skipif(not (REAL_DATA / 'amazon_cdrib' / 'game_video' / 'train.txt').is_file(),
                    reason='no ../shared/data/amazon_cdrib')
def test_real_amazon_video_game_counts():
    pair = load_domains({'type': 'amazon_cdrib', 'source': 'video', 'target': 'game'}, REAL_DATA)
    assert len(set(pair.source['user']) & set(pair.target['user'])) == 2179
    assert len(pair.target) == 155036 + 1381 + 1304 and pair.target['item'].nunique() == 12319
    assert pair.target['user'].nunique() == 25025 and pair.source['user'].nunique() == 19457
