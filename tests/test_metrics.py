"""Known-answer tests of the evaluation as the plugin uses it: the plugin metric UAUC and RecBole's GAUC,
NDCG, Recall, Hit and MRR, computed on paper below, through RecBole's own Collector/Evaluator and through a
full run of TargetPop on a hand-written scenario whose popularity order is known.

Conventions (RecBole's): ranks are 1-based in descending score order; a user's AUC is the share of
(positive, negative) candidate pairs ranked correctly (a tie counts 1/2); NDCG@K divides the DCG of the top K
by the ideal DCG of min(#positives, K) hits; log below is log2. 1/log2(2) = 1, 1/log2(3) = 0.630930,
1/log2(4) = 0.5, 1/log2(5) = 0.430677, 1/log2(6) = 0.386853, 1/log2(7) = 0.356207, 1/log2(11) = 0.289065.
"""

import inspect

import numpy as np
import pytest
import torch
from recbole.evaluator import Collector, Evaluator
from recbole.evaluator import register as recbole_register

import recbole_tmcdr
from recbole_tmcdr.metrics import PLUGIN_METRICS, UAUC, RankCollector
from conftest import fast_config

NEG_INF = float('-inf')
RANKING_METRICS = ['UAUC', 'GAUC', 'NDCG', 'Recall', 'Hit', 'MRR']


# ----- a hand-written two-domain scenario (RecBole atomic files, no cold-split step) -----------------------

# Target training rows: warm user w_k has items t1 .. t(10-k), so the popularity of t_i is 10 - i
# (t1: 9, t2: 8, ..., t9: 1) and t10 is never trained on (0). TargetPop ranks t1 > t2 > ... > t10, no ties.
TARGET_TRAIN = {f'w{k}': [f't{i}' for i in range(1, 11 - k)] for k in range(1, 10)}
# Cold users: target rows only in valid / test (they are in the source domain too).
TARGET_VALID = {'c1': ['t1', 't3'], 'c2': ['t2', 't10'], 'c3': ['t5']}
TARGET_TEST = {'c4': ['t1'], 'c5': ['t10'], 'c6': ['t2', 't3', 't4']}
USERS = list(TARGET_TRAIN) + list(TARGET_VALID) + list(TARGET_TEST)
# Source rows: every user has 2 of 5 source items (nobody has them all, so negatives can be sampled).
SOURCE_ROWS = [(u, f's{(k + j) % 5 + 1}') for k, u in enumerate(USERS) for j in (0, 1)]
# Feature files (optional): one token feature per item/user, written in REVERSE order so that a table
# left in file order (or in any order other than by id) is visibly misaligned.
TARGET_GENRE = {f't{i}': f'g{i % 3}' for i in range(1, 11)}
SOURCE_GENRE = {f's{i}': f'h{i % 2}' for i in range(1, 6)}
TARGET_AGE = {u: f'a{k % 4}' for k, u in enumerate(USERS)}

# Every cold user ranks all 10 target items (no training history), t_i at rank i.
# Valid users, n = 10 candidates:
#   c1 {t1, t3}: p=2, 8 negatives. t1 is above all 8, t3 above t4..t10 (7)  -> AUC = 15/16 = 0.9375
#                NDCG@10 = (1/log2(2) + 1/log2(4)) / (1 + 1/log2(3)) = 1.5 / 1.630930 = 0.919721, RR = 1
#   c2 {t2, t10}: t2 above t3..t9 (7), t10 above none                     -> AUC = 7/16 = 0.4375
#                NDCG@10 = (0.630930 + 0.289065) / 1.630930 = 0.564090, RR = 1/2
#   c3 {t5}: p=1, 9 negatives, t5 above t6..t10 (5)                        -> AUC = 5/9 = 0.555556
#                NDCG@10 = 1/log2(6) = 0.386853, RR = 1/5
#   UAUC = (0.9375 + 0.4375 + 0.555556) / 3 = 0.643519; GAUC (weights 2, 2, 1) = 3.305556 / 5 = 0.661111
#   NDCG@10 = (0.919721 + 0.564090 + 0.386853) / 3 = 0.623555; MRR@10 = 1.7 / 3 = 0.566667;
#   Recall@10 = Hit@10 = 1 (10 candidates).
EXPECTED_VALID = {'uauc': 0.6435, 'gauc': 0.6611, 'ndcg@10': 0.6236, 'recall@10': 1.0, 'hit@10': 1.0,
                  'mrr@10': 0.5667}
# Test users:
#   c4 {t1}: AUC = 9/9 = 1, NDCG = 1, RR = 1;  c5 {t10}: AUC = 0, NDCG = 1/log2(11) = 0.289065, RR = 1/10
#   c6 {t2, t3, t4}: 7 negatives (t1, t5..t10); each positive is above t5..t10 (6) -> AUC = 18/21 = 0.857143
#                NDCG = (0.630930 + 0.5 + 0.430677) / (1 + 0.630930 + 0.5) = 1.561606 / 2.130930 = 0.732829
#                RR = 1/2
#   UAUC = 1.857143 / 3 = 0.619048; GAUC (weights 1, 1, 3) = 3.571429 / 5 = 0.714286
#   NDCG@10 = (1 + 0.289065 + 0.732829) / 3 = 0.673965; MRR@10 = 1.6 / 3 = 0.533333
EXPECTED_TEST = {'uauc': 0.619, 'gauc': 0.7143, 'ndcg@10': 0.674, 'recall@10': 1.0, 'hit@10': 1.0,
                 'mrr@10': 0.5333}


def _write(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\t'.join(header) + '\n' + ''.join('\t'.join(row) + '\n' for row in rows))


def write_handmade_scenario(directory, feature_files=False, extra_target_item=None):
    """Atomic files of the hand-written scenario in ``directory``; returns the ``source_domain`` /
    ``target_domain`` config entries. ``feature_files`` adds ``.item`` files (both domains) and a target
    ``.user`` file; ``extra_target_item`` is a target item token listed only in the ``.item`` file."""
    inter_header = ['user_id:token', 'item_id:token']
    _write(directory / 'src' / 'src.inter', inter_header, SOURCE_ROWS)
    for part, table in (('train', TARGET_TRAIN), ('valid', TARGET_VALID), ('test', TARGET_TEST)):
        _write(directory / 'tgt' / f'tgt.{part}.inter', inter_header,
               [(user, item) for user, items in table.items() for item in items])
    load_col = {'inter': ['user_id', 'item_id']}
    source = {'dataset': 'src', 'data_path': str(directory), 'load_col': dict(load_col)}
    target = {'dataset': 'tgt', 'data_path': str(directory), 'benchmark_filename': ['train', 'valid', 'test'],
              'load_col': dict(load_col)}
    if feature_files:
        genres = dict(TARGET_GENRE, **({extra_target_item: 'g9'} if extra_target_item else {}))
        _write(directory / 'tgt' / 'tgt.item', ['item_id:token', 'genre:token'], list(genres.items())[::-1])
        _write(directory / 'src' / 'src.item', ['item_id:token', 'genre:token'], list(SOURCE_GENRE.items())[::-1])
        _write(directory / 'tgt' / 'tgt.user', ['user_id:token', 'age:token'], list(TARGET_AGE.items())[::-1])
        source['load_col']['item'] = ['item_id', 'genre']
        target['load_col'].update(item=['item_id', 'genre'], user=['user_id', 'age'])
    return {'source_domain': source, 'target_domain': target}


def handmade_config(directory, feature_files=False, **overrides):
    config = dict(write_handmade_scenario(directory, feature_files=feature_files), metrics=RANKING_METRICS,
                  topk=[10], valid_metric='NDCG@10')
    config.update(overrides)
    return fast_config(**config)


def assert_results(actual, expected):
    assert set(actual) == set(expected), (actual, expected)
    for name, value in expected.items():
        assert float(actual[name]) == pytest.approx(value, abs=1.5e-4), (name, actual, expected)


# ----- UAUC.metric_info on its own ----------------------------------------------------------------------

def test_uauc_metric_info_known_answer():
    # user 1: 4 candidates, positives at ranks 1 and 3 -> negatives below: 2 + 1 = 3 of 2*2 pairs -> 0.75
    # user 2: 5 candidates, one positive at rank 5 -> 0 of 4 pairs -> 0.0
    # user 3: 6 candidates, positives at ranks 2, 3, 4 -> each above the 2 at ranks 5, 6: 6 / 9 = 0.666667
    # UAUC = (0.75 + 0 + 0.666667) / 3 = 0.472222
    pos_rank_sum = np.array([1 + 3, 5, 2 + 3 + 4], dtype=float)
    user_len = np.array([4, 5, 6], dtype=float)
    pos_len = np.array([2, 1, 3], dtype=float)
    assert UAUC.metric_info(pos_rank_sum, user_len, pos_len) == pytest.approx(0.472222, abs=1e-6)
    # A user without negatives (all 3 candidates positive) or without positives is skipped.
    assert UAUC.metric_info(np.array([4., 6.]), np.array([4., 3.]), np.array([2., 3.])) == pytest.approx(0.75)
    assert np.isnan(UAUC.metric_info(np.array([6.]), np.array([3.]), np.array([3.])))


# ----- RecBole's Collector + Evaluator on a hand-made score matrix ---------------------------------------

def _evaluate_scores(scores, positives, metrics, topk, collector_class=Collector):
    """Run RecBole's Collector (or the plugin's) and Evaluator on a (users x items) score matrix, as the Trainer
    does."""
    config = {'metrics': metrics, 'topk': topk, 'eval_args': {'mode': 'uni100'}, 'device': torch.device('cpu'),
              'metric_decimal_place': 6}
    collector = collector_class(config)
    positive_u = torch.tensor([u for u, items in enumerate(positives) for _ in items])
    positive_i = torch.tensor([i for items in positives for i in items])
    collector.eval_batch_collect(torch.tensor(scores, dtype=torch.float), None, positive_u, positive_i)
    return Evaluator(config).evaluate(collector.get_data_struct())


@pytest.mark.parametrize('collector_class', [Collector, RankCollector])
def test_collector_known_answer_sampled_layout(collector_class):
    # 3 users x 12 item columns laid out as RecBole's sampled evaluation does: a user's candidates hold
    # scores, every other column (incl. the padding column 0) is -inf. The -inf columns must not count:
    # RecBole's user_len is the number of finite scores.
    x = NEG_INF
    scores = [
        # A: candidates 1..5 = .9 .8 .7 .6 .5; positives {2, 5} at ranks 2 and 5; n = 5, 3 negatives.
        [x, .9, .8, .7, .6, .5, x, x, x, x, x, x],
        # B: candidates 3, 6, 7, 8 = .2 .9 .4 .1; positive {6} at rank 1; n = 4.
        [x, x, x, .2, x, x, .9, .4, .1, x, x, x],
        # C: candidates 1, 2, 4, 9, 10, 11 = .5 .3 .6 .7 .1 .2; positives {4, 10}; order 9, 4, 1, 2, 11, 10:
        # ranks 2 and 6; n = 6, 4 negatives.
        [x, .5, .3, x, .6, x, x, x, x, .7, .1, .2],
    ]
    positives = [[2, 5], [6], [4, 10]]
    # AUC:  A: item 2 is above negatives 3, 4 (2), item 5 above none -> 2 / (2*3) = 0.333333
    #       B: 3 / 3 = 1
    #       C: item 4 is above 1, 2, 11 (3), item 10 above none -> 3 / (2*4) = 0.375
    # UAUC = (0.333333 + 1 + 0.375) / 3 = 0.569444;  GAUC (weights 2, 1, 2) = 2.416667 / 5 = 0.483333
    # NDCG@10: A: (1/log2(3) + 1/log2(6)) / (1 + 1/log2(3)) = 1.017783 / 1.630930 = 0.624054
    #          B: 1;  C: (1/log2(3) + 1/log2(7)) / 1.630930 = 0.987137 / 1.630930 = 0.605261
    #          mean = 2.229315 / 3 = 0.743105
    # NDCG@3:  A: 0.630930 / 1.630930 = 0.386853;  B: 1;  C: 0.386853  -> mean 0.591235
    # Recall@3: A 1/2, B 1, C 1/2 -> 0.666667;  Recall@10 = Hit@3 = Hit@10 = 1
    # MRR (@3 and @10): A 1/2, B 1, C 1/2 -> 0.666667
    result = _evaluate_scores(scores, positives, RANKING_METRICS, topk=[3, 10], collector_class=collector_class)
    expected = {'uauc': 0.569444, 'gauc': 0.483333, 'ndcg@3': 0.591235, 'ndcg@10': 0.743105,
                'recall@3': 0.666667, 'recall@10': 1.0, 'hit@3': 1.0, 'hit@10': 1.0,
                'mrr@3': 0.666667, 'mrr@10': 0.666667}
    assert set(result) == set(expected)
    for name, value in expected.items():
        assert float(result[name]) == pytest.approx(value, abs=2e-6), name


@pytest.mark.parametrize('collector_class', [Collector, RankCollector])
def test_collector_uauc_with_ties_counts_half(collector_class):
    # One user, candidates 1..6 = .7 .5 .5 .3 .2 .1, positives {2 (tied with the negative 3), 6}.
    # Average ranks: 1, 2.5, 2.5, 4, 5, 6. Item 2 is above negatives 4, 5 and tied with 3 -> 2.5; item 6: 0.
    # AUC = 2.5 / (2 * 4) = 0.3125 (also GAUC, one user).
    x = NEG_INF
    result = _evaluate_scores([[x, .7, .5, .5, .3, .2, .1, x, x, x, x]], [[2, 6]], ['UAUC', 'GAUC'], topk=[10],
                              collector_class=collector_class)
    assert result['uauc'] == pytest.approx(0.3125)
    assert float(result['gauc']) == pytest.approx(0.3125)


def test_uauc_equals_gauc_when_every_user_has_one_positive():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 9))
    scores[:, 0] = NEG_INF
    positives = [[int(rng.integers(1, 9))] for _ in range(7)]
    result = _evaluate_scores(scores.tolist(), positives, ['UAUC', 'GAUC'], topk=[5])
    assert result['uauc'] == pytest.approx(float(result['gauc']), abs=1e-6)



@pytest.mark.filterwarnings('ignore:invalid value encountered in divide:RuntimeWarning')  # recall, no positives
@pytest.mark.parametrize('ties', [False, True])
def test_rank_collector_equals_recboles_collector(ties):
    # the plugin's collector ranks without sorting item indices; its rec.meanrank must be RecBole's, value for value:
    # ties, masked (-inf) history, a user without positives, several batches, and a batch without any positive
    config = {'metrics': RANKING_METRICS, 'topk': [10], 'eval_args': {'mode': 'full'}, 'device': torch.device('cpu'),
              'metric_decimal_place': 6}
    generator = torch.Generator().manual_seed(int(ties))
    collectors = Collector(config), RankCollector(config)
    for n_users in (9, 5, 4):
        scores = (torch.randint(0, 4, (n_users, 40), generator=generator).float() if ties
                  else torch.randn(n_users, 40, generator=generator))
        scores[:, 0] = NEG_INF
        scores[torch.rand(n_users, 40, generator=generator) < 0.2] = NEG_INF
        positive_u = torch.arange(n_users).repeat_interleave(torch.randint(0, 6, (n_users,), generator=generator))
        positive_u = positive_u[positive_u != 1]  # user 1 has none
        positive_i = torch.randint(1, 40, (len(positive_u),), generator=generator)
        scores[positive_u, positive_i] = torch.randint(0, 4, (len(positive_u),), generator=generator).float()
        for collector in collectors:
            collector.eval_batch_collect(scores.clone(), None, positive_u, positive_i)
    empty = torch.zeros(0, dtype=torch.long)
    for collector in collectors:
        collector.eval_batch_collect(torch.randn(3, 40, generator=generator), None, empty, empty)
    recbole_data, plugin_data = (c.get_data_struct() for c in collectors)
    recbole_rows, plugin_rows = recbole_data.get('rec.meanrank'), plugin_data.get('rec.meanrank')
    assert torch.equal(recbole_rows, plugin_rows) and recbole_rows.dtype == plugin_rows.dtype
    assert recbole_rows[:, 2].sum() > 0 and (recbole_rows[:, 2] == 0).any()  # positives, and users without any
    recbole_result, plugin_result = (dict(Evaluator(config).evaluate(data)) for data in (recbole_data, plugin_data))
    assert plugin_result == pytest.approx(recbole_result, rel=0, abs=0, nan_ok=True)  # recall: nan without positives

# ----- a full evaluation of a fixed scorer (TargetPop) on the hand-written scenario ----------------------

@pytest.mark.parametrize('mode', ['full', 'uni100'])
def test_targetpop_known_answer(tmp_path, mode):
    # uni100 draws 100 negatives per positive from the <= 9 non-positive items: with the fixed seed every one
    # of them is drawn, so the candidates (hence the metrics) are the same as in full ranking.
    result = recbole_tmcdr.run_recbole_cdr(model='TargetPop',
                                           config_dict=handmade_config(tmp_path, eval_args={'mode': mode}))
    assert_results(result['best_valid_result'], EXPECTED_VALID)
    assert_results(result['test_result'], EXPECTED_TEST)


# ----- registering UAUC only adds a name -----------------------------------------------------------------

def test_registering_uauc_only_adds_it_to_recbole_tables():
    # RecBole's own tables, rebuilt from scratch from recbole.evaluator.metrics.
    smaller, information, types, classes = recbole_register.cluster_info('recbole.evaluator.metrics')
    assert 'uauc' not in classes
    tables = {'metrics_dict': (recbole_register.metrics_dict, classes),
              'metric_information': (recbole_register.metric_information, information),
              'metric_types': (recbole_register.metric_types, types)}
    for table_name, (live, pristine) in tables.items():
        assert set(live) - set(pristine) == set(PLUGIN_METRICS), table_name
        assert {name: live[name] for name in pristine} == pristine, table_name
    assert recbole_register.smaller_metrics == smaller
    assert recbole_register.metrics_dict['uauc'] is UAUC
    assert recbole_register.metric_types['uauc'] == UAUC.metric_type
    # The names recbole_cdr's config validates against are the same (patched-in-place) dicts.
    import recbole.evaluator
    assert recbole.evaluator.metric_types is recbole_register.metric_types
    assert recbole.evaluator.metrics_dict is recbole_register.metrics_dict
    # And the metric classes themselves are RecBole's (nothing replaced): e.g. GAUC is still defined there.
    assert inspect.getmodule(recbole_register.metrics_dict['gauc']).__name__ == 'recbole.evaluator.metrics'
    recbole_tmcdr.metrics.register_metrics()  # idempotent
    assert set(recbole_register.metrics_dict) - set(classes) == {'uauc'}


def test_rank_collector_edges():
    from recbole_tmcdr.metrics import mean_rank
    config = {'metrics': ['UAUC', 'GAUC', 'NDCG'], 'topk': [3], 'eval_args': {'mode': 'full'},
              'device': torch.device('cpu'), 'metric_decimal_place': 6}
    scores = torch.tensor([[NEG_INF, .5, .4, .3, .1], [NEG_INF, .9, .8, .7, .6]])
    positive_u, positive_i = torch.tensor([0, 1]), torch.tensor([2, 4])
    collector = RankCollector(config)
    with pytest.raises(ValueError, match='scored 1 of 2 evaluated users with NaN'):  # RecBole ranks NaN anywhere
        collector.eval_batch_collect(torch.where(scores == .8, float('nan'), scores), None, positive_u, positive_i)
    with pytest.raises(IndexError, match=r'Positive item ids must lie in \[0, 5\); got 2..5'):
        collector.eval_batch_collect(scores, None, positive_u, torch.tensor([2, 5]))
    collector.eval_batch_collect(scores, None, positive_u, positive_i)  # the failed batches left nothing behind
    data = collector.get_data_struct()
    assert data.get('rec.meanrank').tolist() == [[2.0, 4.0, 1.0], [4.0, 4.0, 1.0]] and len(data.get('rec.topk')) == 2
    # half-precision scores: float32 rows, as RecBole's (a float16 rank sum overflows)
    half = torch.rand(2, 70000).half()
    assert mean_rank(half, torch.tensor([0, 1]), torch.tensor([3, 4])).dtype == torch.float32


def test_sorted_rows_equals_torch_sort():
    from recbole_tmcdr.metrics import sorted_rows
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(7, 40, generator=generator, dtype=torch.float64)
    scores[0, :5] = float('-inf')
    scores[1, :4] = 0.5  # ties
    for rows in (scores, scores.float(), scores.t()[:7], scores[:, ::3], torch.arange(12).view(3, 4).flip(1)):
        assert torch.equal(sorted_rows(rows), rows.sort(dim=1).values)
