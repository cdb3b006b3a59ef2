"""benchmarks/twin_items.py: twin pairs and the share of target rows they cover, on a known answer."""

import pandas as pd

from benchmarks.twin_items import twin_pairs


def frame(rows, domain):
    return pd.DataFrame({'user': [u for u, _ in rows], 'item': [f'{domain}:{i}' for _, i in rows]})


def test_twin_pairs_known_answer():
    # users 0-3 are in both domains; source item 1 and target item 7 always go together (4 users, Jaccard 1);
    # source item 2 and target item 8 share 2 users only (below min_users); user 9 is source-only.
    source = frame([(0, 1), (1, 1), (2, 1), (3, 1), (0, 2), (1, 2), (9, 1), (9, 2)], 'a')
    target = frame([(0, 7), (1, 7), (2, 7), (3, 7), (0, 8), (1, 8), (2, 5), (2, 5)], 'b')
    twins, with_twin, rows = twin_pairs(source, target, min_users=3, min_jaccard=0.5)
    assert twins[['source_item', 'target_item', 'users']].values.tolist() == [['a:1', 'b:7', 4]]
    assert twins['jaccard'].tolist() == [1.0]  # user 9 is not overlapping: it does not count for item a:1
    assert (with_twin, rows) == (4, 7)  # the 4 rows of b:7 among the 7 distinct overlapping target rows
    twins, with_twin, _ = twin_pairs(source, target, min_users=2, min_jaccard=0.6)
    assert len(twins) == 2 and with_twin == 6  # a:2 -> b:8 (2 users, Jaccard 1) joins; a:1 -> b:8 is 0.5
