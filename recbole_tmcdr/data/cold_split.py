"""The cold-user split of a cross-domain scenario (TMCDR protocol).

A fraction ``cold_user_ratio`` of the OVERLAPPING users (present in both domains) is drawn at random
(reproducibly from ``seed``) to be cold-start users: ALL their target-domain rows are removed from
target training and become the validation rows (cold validation users) or test rows (cold test users).
Their source-domain rows are kept: the source profile is what a cold-start user brings.
"""

import math
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import pandas as pd

from recbole_tmcdr.data.raw_sources import ScenarioDataError


@dataclass
class ColdSplit:
    """Result of :func:`make_cold_split` (frames have columns user, item, timestamp)."""

    target_train: pd.DataFrame  # target rows of every user except the cold ones
    target_valid: pd.DataFrame  # all target rows of the cold validation users, per user in time order
    target_test: pd.DataFrame   # all target rows of the cold test users, per user in time order
    source: pd.DataFrame        # ALL source rows (cold users' source rows included)
    cold_valid_users: List[str]
    cold_test_users: List[str]
    warm_overlap_users: List[str]
    stats: Dict = field(default_factory=dict)


def _order_by_user_time(df: pd.DataFrame) -> pd.DataFrame:
    """Group rows by user (sorted tokens); within a user, timestamp order, stable (file order on ties/NaN)."""
    out = df.assign(_pos=np.arange(len(df)))
    out = out.sort_values(['user', 'timestamp', '_pos'], kind='mergesort', na_position='last')
    return out.drop(columns='_pos').reset_index(drop=True)


def _domain_stats(df: pd.DataFrame) -> Dict:
    return {'users': int(df['user'].nunique()), 'items': int(df['item'].nunique()), 'interactions': int(len(df))}


def _check_fraction(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 < float(value) < 1.0) \
            or math.isnan(float(value)):
        raise ScenarioDataError(f'{key} must be a number strictly between 0 and 1, got {value!r}.')
    return float(value)


def make_cold_split(source_df: pd.DataFrame, target_df: pd.DataFrame, cold_user_ratio: float = 0.2,
                    cold_valid_fraction: float = 0.5, seed: int = 2022) -> ColdSplit:
    """Split the overlapping users into warm users and cold validation / test users.

    ``round(cold_user_ratio * n_overlap)`` users are drawn with ``numpy.random.default_rng(seed)`` from
    the SORTED list of overlapping user tokens; the first ``round(cold_valid_fraction * n_cold)`` of the
    draw are validation users, the rest test users. Raises :class:`ScenarioDataError` when the split
    would leave no warm overlapping user or an empty validation / test set.
    """
    ratio = _check_fraction(cold_user_ratio, 'cold_user_ratio')
    vfrac = _check_fraction(cold_valid_fraction, 'cold_valid_fraction')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ScenarioDataError(f'seed must be an integer, got {seed!r}.')
    for name, df in (('source', source_df), ('target', target_df)):
        missing = {'user', 'item', 'timestamp'} - set(df.columns)
        if missing:
            raise ScenarioDataError(f'{name} frame lacks column(s) {sorted(missing)} (expected user, item, timestamp).')
        if len(df) == 0:
            raise ScenarioDataError(f'the {name} domain has no interactions.')

    overlap = sorted(set(source_df['user'].unique()) & set(target_df['user'].unique()))
    n_overlap = len(overlap)
    if n_overlap == 0:
        raise ScenarioDataError('no overlapping users between the source and target domains: a cold-start '
                                'scenario needs users present in both.')
    n_cold = int(round(ratio * n_overlap))
    n_valid = int(round(vfrac * n_cold))
    n_test = n_cold - n_valid
    if n_cold >= n_overlap:
        raise ScenarioDataError(
            f'cold_user_ratio={ratio} makes all {n_overlap} overlapping users cold-start users; at least one warm '
            f'overlapping user is needed to learn the mapping. Lower cold_user_ratio.')
    if n_valid < 1 or n_test < 1:
        raise ScenarioDataError(
            f'cold_user_ratio={ratio} x {n_overlap} overlapping users gives {n_cold} cold users, split by '
            f'cold_valid_fraction={vfrac} into {n_valid} validation and {n_test} test users; each needs at least '
            f'one. Raise cold_user_ratio or change cold_valid_fraction.')

    rng = np.random.default_rng(int(seed))
    perm = rng.permutation(n_overlap)
    overlap_arr = np.array(overlap, dtype=object)
    valid_users = sorted(overlap_arr[perm[:n_valid]].tolist())
    test_users = sorted(overlap_arr[perm[n_valid:n_cold]].tolist())
    cold = set(valid_users) | set(test_users)
    warm = sorted(u for u in overlap if u not in cold)

    t_user = target_df['user']
    is_valid = t_user.isin(valid_users).to_numpy()
    is_test = t_user.isin(test_users).to_numpy()
    target_train = target_df[~(is_valid | is_test)].reset_index(drop=True)
    target_valid = _order_by_user_time(target_df[is_valid])
    target_test = _order_by_user_time(target_df[is_test])
    source = source_df.reset_index(drop=True)

    train_items = set(target_train['item'].unique())
    cold_items = set(target_valid['item'].unique()) | set(target_test['item'].unique())
    per_user = pd.concat([target_valid, target_test])['user'].value_counts()
    s_users = set(source_df['user'].unique())
    t_users = set(target_df['user'].unique())
    stats = {
        'source': _domain_stats(source_df),
        'target': _domain_stats(target_df),
        'n_overlap': n_overlap,
        'n_source_only_users': len(s_users - t_users),
        'n_target_only_users': len(t_users - s_users),
        'n_warm_overlap': len(warm),
        'n_cold_valid': len(valid_users),
        'n_cold_test': len(test_users),
        'target_rows_train': int(len(target_train)),
        'target_rows_valid': int(len(target_valid)),
        'target_rows_test': int(len(target_test)),
        'target_users_train': int(target_train['user'].nunique()),
        'target_items_train': len(train_items),
        'target_items_only_cold': len(cold_items - train_items),
        'target_rows_per_cold_user_min': int(per_user.min()),
        'target_rows_per_cold_user_median': float(per_user.median()),
        'target_rows_per_cold_user_max': int(per_user.max()),
        # K-shot evaluates the test users only: K must leave one of them a query row
        'target_rows_per_cold_test_user_max': int(target_test['user'].value_counts().max()),
        # negative sampling needs, for every training user, an item they have not interacted with
        'source_max_items_per_user': int(source_df.groupby('user')['item'].nunique().max()),
        'target_train_max_items_per_user': int(target_train.groupby('user')['item'].nunique().max())
        if len(target_train) else 0,
        # ... and so does RecBole's evaluation sampler for every cold user (it is built over all phases)
        'target_cold_max_items_per_user': int(pd.concat([target_valid, target_test]).groupby('user')['item']
                                              .nunique().max()),
        'source_rows_cold_users': int(source_df['user'].isin(cold).sum()),
        'source_has_timestamp': bool(source_df['timestamp'].notna().any()),
        'target_has_timestamp': bool(target_df['timestamp'].notna().any()),
        'seed': int(seed),
        'cold_user_ratio': ratio,
        'cold_valid_fraction': vfrac,
    }
    return ColdSplit(target_train=target_train, target_valid=target_valid, target_test=target_test, source=source,
                     cold_valid_users=valid_users, cold_test_users=test_users, warm_overlap_users=warm, stats=stats)
