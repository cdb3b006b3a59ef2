"""Twin items: source/target item pairs that the overlapping users almost always consume together.

Amazon's categories share products, so one purchase can appear in both domains of a pair under two unrelated
item ids (CDRIB numbers items per domain). A model that learns item-item associations through shared users
(the merged-domain baselines, CMF) can then score a cold user's target item from its source twin: a signal
that is real in the data but that the paper's mapping models cannot exploit as directly. This script measures
how much of each scenario that is.

A pair (source item s, target item t) is a *twin* when at least ``--min-users`` overlapping users consumed
both and their Jaccard index over the overlapping users is at least ``--min-jaccard``. The figure reported
per scenario is the share of the overlapping users' target rows whose item has a twin that the same user
consumed in the source domain.

    python benchmarks/twin_items.py --scenarios amazon_sport_cloth amazon_video_game douban_music_book
"""

import argparse
import sys
from pathlib import Path


if __package__ in (None, ''):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_tmcdr.benchmark.spec import load_yaml  # noqa: E402
from recbole_tmcdr.config import dataset_config_file, default_raw_data_path  # noqa: E402
from recbole_tmcdr.data.raw_sources import load_domains  # noqa: E402


def twin_pairs(source, target, min_users=3, min_jaccard=0.5):
    """Twin (source item, target item) pairs of two ``user, item`` frames, over the users present in both.

    Returns ``(pairs, target_rows_with_twin, overlap_target_rows)``: the twin pairs (columns ``source_item,
    target_item, users, jaccard``), the number of the overlapping users' target rows whose item has a twin the
    same user consumed in the source domain, and the number of the overlapping users' target rows.
    """
    source = source[['user', 'item']].drop_duplicates()
    target = target[['user', 'item']].drop_duplicates()
    overlap = set(source['user']) & set(target['user'])
    source, target = source[source['user'].isin(overlap)], target[target['user'].isin(overlap)]
    both = source.merge(target, on='user', suffixes=('_source', '_target'))  # one row per user x (s, t)
    pairs = both.groupby(['item_source', 'item_target']).size().rename('users').reset_index()
    source_users = source.groupby('item').size()
    target_users = target.groupby('item').size()
    union = (source_users.loc[pairs['item_source']].to_numpy() + target_users.loc[pairs['item_target']].to_numpy()
             - pairs['users'].to_numpy())
    pairs['jaccard'] = pairs['users'] / union
    twins = pairs[(pairs['users'] >= min_users) & (pairs['jaccard'] >= min_jaccard)]
    rows_with_twin = both.merge(twins[['item_source', 'item_target']])[['user', 'item_target']].drop_duplicates()
    twins = twins.rename(columns={'item_source': 'source_item', 'item_target': 'target_item'}).reset_index(drop=True)
    return twins, len(rows_with_twin), len(target)


def scenario_of(name):
    scenario = (load_yaml(Path(dataset_config_file(name))) or {}).get('scenario')
    return {key: value for key, value in scenario.items() if key != 'name'}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenarios', nargs='+', required=True, help='dataset_configs names')
    parser.add_argument('--raw-data-path', default=None, help='raw data directory (default: ../shared/data)')
    parser.add_argument('--min-users', type=int, default=3, help='overlapping users who consumed both items')
    parser.add_argument('--min-jaccard', type=float, default=0.5, help='Jaccard index of the two items')
    args = parser.parse_args(argv)
    raw_data_path = args.raw_data_path or default_raw_data_path()
    print(f'Twin items (>= {args.min_users} overlapping users, Jaccard >= {args.min_jaccard}); raw data: '
          f'{raw_data_path}\n')
    print('| scenario | twin pairs | overlapping users\' target rows with a twin | share |')
    print('|---|:---:|:---:|:---:|')
    for name in args.scenarios:
        domains = load_domains(scenario_of(name), raw_data_path)
        twins, with_twin, rows = twin_pairs(domains.source, domains.target, args.min_users, args.min_jaccard)
        print(f'| {name} | {len(twins):,} | {with_twin:,} of {rows:,} | {with_twin / max(rows, 1):.1%} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
