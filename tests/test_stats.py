"""Report statistics with known answers: no test below 3 pairs, Holm's adjustment, the paired difference's CI,
and the negative-transfer mark only where a one-sided test says so."""

import pytest
from scipy import stats

from recbole_tmcdr.benchmark import report as report_mod
from recbole_tmcdr.benchmark.stats import MIN_PAIRS, adjust_family, holm, paired_test
from tests.test_benchmark import record, table_rows


def test_no_test_with_two_pairs():
    test = paired_test({0: 0.80, 1: 0.90}, {0: 0.70, 1: 0.71})
    assert MIN_PAIRS == 3 and test.n == 2 and test.p is None and not test.significant
    assert test.diff == pytest.approx(0.145) and test.ci_low is None
    lines = [record('s', m, seed, auc, 0.3) for seed in range(2)
             for m, auc in (('EMCDR_MF', 0.70 + 0.01 * seed), ('TMCDR_MF', 0.80 + 0.1 * seed))]
    agg = report_mod.aggregate(lines)
    assert 'n/a (n=2)' in report_mod.pairs_table(agg.comparisons)
    assert '\\*' not in table_rows(report_mod.main_table(agg))['TMCDR_MF']


def test_holm_by_hand():
    # sorted p .01, .02, .03, .04 (m = 4): 4 x .01 = .04; 3 x .02 = .06; 2 x .03 = .06 (kept monotone); 1 x .04
    assert holm([0.03, None, 0.01, 0.04, 0.02]) == [pytest.approx(0.06), None, pytest.approx(0.04),
                                                     pytest.approx(0.06), pytest.approx(0.06)]
    assert holm([0.9, 0.8]) == [pytest.approx(1.0), pytest.approx(1.0)]


def test_difference_ci_and_adjusted_significance():
    a, b = {0: 0.82, 1: 0.832, 2: 0.844}, {0: 0.80, 1: 0.81, 2: 0.82}
    test = paired_test(a, b)
    expected = stats.ttest_rel(list(a.values()), list(b.values()))
    assert test.p == pytest.approx(expected.pvalue)
    assert test.ci_text() == '+0.0220 [+0.0170, +0.0270]'
    # p .0027 alone is significant; in a family of 20 equally strong tests Holm gives .055: not significant
    family = [test] + [paired_test(a, b) for _ in range(19)]
    adjust_family(family)
    assert test.p_holm == pytest.approx(20 * expected.pvalue) and not test.significant


def test_negative_transfer_needs_a_one_sided_test():
    floor, noisy_below, clearly_below = [0.70, 0.71, 0.72], [0.71, 0.69, 0.715], [0.60, 0.615, 0.62]
    lines = []
    for seed in range(3):
        lines += [record('s', 'TargetPop', seed, floor[seed], 0.2),
                  record('s', 'EMCDR_MFori', seed, noisy_below[seed], 0.2),
                  record('s', 'EMCDR_MF', seed, clearly_below[seed], 0.2),
                  record('s', 'EMCDR_BPR', seed, 0.80, 0.3)]
    agg = report_mod.aggregate(lines)
    rows = table_rows(report_mod.main_table(agg))
    assert '†' in rows['EMCDR_MF'] and '†' not in rows['EMCDR_MFori'] and '†' not in rows['EMCDR_BPR']
    text = report_mod.negative_transfer_text(agg)
    assert 'EMCDR_MFori (AUC 0.7050) vs the target-only floor TargetPop (AUC 0.7100): not above the floor (n.s.)' in text
    assert 'EMCDR_MF (AUC 0.6117) vs the target-only floor TargetPop (AUC 0.7100): † negative transfer' in text
    one_sided = stats.ttest_rel(clearly_below, floor, alternative='less').pvalue
    assert f'one-sided p {report_mod._fmt_p(one_sided)}' in text


def test_bridge_stage_section_reports_best_epoch_and_steps():
    history = [{'epoch': e, 'steps': 10 * (e + 1), 'inner_step_ratio': 0.01 * (e + 1)} for e in range(5)]
    lines = [record('s', 'TMCDR_MF', seed, 0.8, 0.3, training={'best_epoch': 1 + seed, 'epochs_run': 5, 'steps': 50,
                                                                'steps_at_best': 10 * (2 + seed),
                                                                'stopped_on_patience': seed == 0, 'history': history})
             for seed in range(3)]
    rows = table_rows(report_mod.training_section(report_mod.aggregate(lines)))
    assert rows['s'].split('|')[3:9] == [' 3 ', ' 2 (1–3) ', ' 5 ', ' 30 / 50 ', ' 1 ', ' 0.0300 ']


def test_equal_differences_are_not_tested_and_two_seeds_say_so():
    constant = paired_test({0: 0.60, 1: 0.61, 2: 0.62}, {0: 0.70, 1: 0.71, 2: 0.72}, 'less')
    assert constant.p is None and constant.diff == pytest.approx(-0.1)
    lines = [record('s', m, seed, auc, 0.3) for seed in range(2)
             for m, auc in (('TargetPop', 0.70 + 0.01 * seed), ('EMCDR_MF', 0.60 + 0.03 * seed))]
    text = report_mod.negative_transfer_text(report_mod.aggregate(lines))
    assert 'not above the floor (not tested, n=2)' in text


def test_every_transfer_model_is_in_the_negative_transfer_family():
    lines = []
    for seed in range(3):
        lines += [record('s', 'TargetPop', seed, 0.70 + 0.01 * seed, 0.2),
                  record('s', 'EMCDR_MF', seed, 0.80 + 0.02 * seed, 0.3),
                  record('s', 'EMCDR_MFori', seed, 0.60 + 0.011 * seed, 0.2)]
    agg = report_mod.aggregate(lines)
    tests = {model: test for model, key, *_, test in agg.floor_tests['s'] if key == 'uauc'}
    assert set(tests) == {'EMCDR_MF', 'EMCDR_MFori'}  # the model above the floor is tested too
    assert tests['EMCDR_MFori'].p_holm == pytest.approx(2 * tests['EMCDR_MFori'].p)


def test_cost_section_separates_pretraining_and_says_when_it_was_reused():
    fresh = {'SOURCE': {'seconds': 30.0, 'reused': False}, 'TARGET': {'seconds': 20.0, 'reused': False},
             'OVERLAP': {'seconds': 5.0}}
    cached = {'SOURCE': {'seconds': 0.1, 'reused': True}, 'TARGET': {'seconds': 0.1, 'reused': True},
              'OVERLAP': {'seconds': 7.0}}
    lines = [record('s', 'TMCDR_MF', 0, 0.8, 0.3, trials=[{'params': {}, 'valid_score': 0.3, 'phases': fresh}]),
             record('s', 'TMCDR_MF', 1, 0.8, 0.3, trials=[{'params': {}, 'valid_score': 0.3, 'phases': cached}])]
    row = table_rows(report_mod.cost_section(report_mod.aggregate(lines)))['s']
    assert [c.strip() for c in row.split('|')[6:9]] == ['25', '6', '1 of 2']


def test_variants_have_their_own_family_and_never_stand_in_for_tmcdr():
    lines = []
    for seed in range(3):
        lines += [record('s', 'TargetPop', seed, 0.70, 0.20),
                  record('s', 'EMCDR_BPR', seed, 0.80 + 0.01 * seed, 0.30 + 0.01 * seed),
                  record('s', 'TMCDR_BPR', seed, 0.70 + 0.012 * seed, 0.20 + 0.011 * seed),
                  record('s', 'TMCDRAdapted_BPR', seed, 0.90 + 0.001 * seed, 0.40 + 0.002 * seed),
                  record('s', 'TMCDRPaperStep_BPR', seed, 0.71 + 0.011 * seed, 0.21 + 0.012 * seed)]
    agg = report_mod.aggregate(lines)
    # the headline family: TMCDR_BPR against the best other (EMCDR_BPR) and in its pair; the variants are neither
    # the baseline nor tested against it, however high they score
    assert set(agg.tests) == {('s', 'TMCDR_BPR')} and agg.baselines['s'] == 'EMCDR_BPR'
    assert {(c.tmcdr, c.baseline) for c in agg.comparisons} == {('TMCDR_BPR', 'EMCDR_BPR')}
    pairs = {(c.tmcdr, c.baseline, c.key): c.test for c in agg.variant_comparisons}
    assert set(pairs) == {(v, b, k) for v in ('TMCDRAdapted_BPR', 'TMCDRPaperStep_BPR')
                          for b in ('TMCDR_BPR', 'EMCDR_BPR') for k in ('uauc', 'ndcg@10')}
    tested = [t for t in pairs.values() if t.p is not None]
    smallest = min(tested, key=lambda t: t.p)
    assert smallest.p_holm == pytest.approx(min(1.0, len(tested) * smallest.p))  # Holm over the variants only
    headline = agg.test('s', 'TMCDR_BPR', 'uauc')
    assert headline.p_holm == pytest.approx(min(1.0, headline.p))  # one test in its family: unaffected
    rows = table_rows(report_mod.main_table(agg))
    assert 'TMCDRAdapted_BPR (beyond the paper)' in rows and 'TMCDRPaperStep_BPR (ablation)' in rows
    assert '\\*' not in rows['TMCDRAdapted_BPR (beyond the paper)']
    markdown = report_mod.render_markdown(agg)
    assert '## Variants of TMCDR' in markdown and 'TMCDRAdapted_BPR (beyond the paper, of TMCDR_BPR)' in markdown
    assert ('variants of TMCDR (own Holm family): TMCDRAdapted_BPR above TMCDR_BPR on AUC, NDCG@10; '
            'TMCDRAdapted_BPR above EMCDR_BPR on AUC, NDCG@10; TMCDRPaperStep_BPR above TMCDR_BPR') in markdown
    assert '- s: TMCDRAdapted_BPR above TMCDR_BPR on AUC, NDCG@10;' in markdown


def test_baseline_and_floor_are_chosen_on_validation_with_enough_seeds():
    lines = []
    for seed in range(3):
        # EMCDR_BPR is best on the TEST users, EMCDR_MF on the VALIDATION users; Pop is the better floor on
        # validation; PTUPCDR is best of all but has one seed
        lines += [record('s', 'TargetPop', seed, 0.72, 0.2, cold_valid={'uauc': 0.60, 'ndcg@10': 0.2}),
                  record('s', 'Pop', seed, 0.70, 0.2, cold_valid={'uauc': 0.65, 'ndcg@10': 0.2}),
                  record('s', 'EMCDR_MF', seed, 0.78 + 0.01 * seed, 0.3, cold_valid={'uauc': 0.80, 'ndcg@10': 0.3}),
                  record('s', 'EMCDR_BPR', seed, 0.80 + 0.01 * seed, 0.3, cold_valid={'uauc': 0.75, 'ndcg@10': 0.3}),
                  record('s', 'TMCDR_MF', seed, 0.79 + 0.012 * seed, 0.3)]
    lines.append(record('s', 'PTUPCDR', 0, 0.95, 0.5, cold_valid={'uauc': 0.95, 'ndcg@10': 0.5}))
    agg = report_mod.aggregate(lines)
    assert agg.baselines['s'] == 'EMCDR_MF' and agg.test('s', 'TMCDR_MF', 'uauc').n == 3
    assert agg.floor['s'] == 'Pop' and agg.best_floor('s') == ('Pop', pytest.approx(0.70))
    markdown = report_mod.render_markdown(agg)
    assert 'against the best other model of the scenario that is not a router (s: EMCDR_MF)' in markdown
    assert 'the best target-only floor: s: Pop)' in markdown
    assert f"every TMCDR test in this report ({agg.family_sizes['tmcdr']} tests with a p-value)" in markdown
    # TMCDR_MF vs EMCDR_MF is both its pair and the best-other test (counted once); NDCG@10 does not vary: 1 test
    assert agg.family_sizes['tmcdr'] == 1


def test_paper_section_says_whether_the_papers_gain_is_inside_our_interval():
    lines = []
    for seed in range(3):
        lines += [record('douban_music_book', 'EMCDR_MF', seed, 0.70 + 0.01 * seed, 0.3),
                  record('douban_music_book', 'TMCDR_MF', seed, 0.70 + 0.011 * seed, 0.3),
                  record('douban_book_music', 'EMCDR_MF', seed, 0.70, 0.3)]
    text = report_mod.paper_section(report_mod.aggregate(lines))
    assert "paper +0.0145, ours +0.0010 [-0.0015, +0.0035] (paired over their 3 common seeds, 95% CI); the paper's gain lies above " \
           "it: not reproduced." in text
    assert "No counterpart in the paper's Table 1: douban_book_music." in text


def test_search_section_counts_choices_and_marks_a_grid_whose_end_every_run_chose():
    grid = {'learning_rate': [0.001, 0.01], 'meta_inner_lr': [0.02, 0.1]}
    trials = [{'params': {}, 'valid_score': 0.3}] * 4
    lines = [record('s', 'TMCDR_MF', seed, 0.8, 0.3, search_space=grid, trials=trials,
                    chosen={'learning_rate': [0.001, 0.01, 0.001][seed], 'meta_inner_lr': 0.1}) for seed in range(3)]
    row = table_rows(report_mod.search_section(report_mod.aggregate(lines)))['TMCDR_MF']
    assert 'learning_rate: 0.001 ×2, 0.01 ×1;' in row
    assert 'meta_inner_lr: 0.1 ×3 (every run at the end of the grid)' in row and '| 4 | 3 |' in row


def test_negative_transfer_is_tested_on_each_metric():
    lines = []
    for seed in range(3):
        lines += [record('s', 'TargetPop', seed, 0.70 + 0.01 * seed, 0.20 + 0.01 * seed),
                  # above the floor on AUC, clearly below it on NDCG@10
                  record('s', 'EMCDR_BPR', seed, 0.80 + 0.011 * seed, 0.10 + 0.012 * seed)]
    agg = report_mod.aggregate(lines)
    assert agg.flagged('s', 'EMCDR_BPR', 'ndcg@10') and not agg.flagged('s', 'EMCDR_BPR', 'uauc')
    row = table_rows(report_mod.main_table(agg))['EMCDR_BPR'].split('|')
    assert '†' not in row[2] and '†' in row[3]
    assert report_mod.verdict_summary(agg).endswith('negative transfer (below TargetPop, one-sided, Holm): AUC none, '
                                                    'NDCG@10 EMCDR_BPR.')
    text = report_mod.negative_transfer_text(agg)
    assert '- s: every transfer model has a mean AUC above the target-only floor TargetPop (AUC 0.7100).' in text
    assert '- s: EMCDR_BPR (NDCG@10 0.1120) vs the target-only floor TargetPop (NDCG@10 0.2100): † negative' in text


def test_report_edge_cases_from_review():
    nan = float('nan')
    # a floor without NDCG@10: the report says so instead of failing
    lines = [record('s', m, seed, auc, ndcg) for seed in range(3)
             for m, auc, ndcg in (('TargetPop', 0.7, nan), ('EMCDR_MF', 0.8 + 0.01 * seed, 0.3), ('TMCDR_MF', 0.81, 0.3))]
    assert '- s: the target-only floor TargetPop has no NDCG@10: NDCG@10 not checked.' in \
        report_mod.negative_transfer_text(report_mod.aggregate(lines))
    # uneven seeds: the paper section's gain is the paired difference over the common seeds, inside its own CI
    lines = [record('douban_music_book', 'EMCDR_MF', seed, [.70, .71, .72][seed], 0.3) for seed in range(3)]
    lines += [record('douban_music_book', 'TMCDR_MF', seed, auc, 0.3)
              for seed, auc in enumerate([.705, .716, .724, .80, .80])]
    text = report_mod.paper_section(report_mod.aggregate(lines))
    assert 'ours +0.0050 [+0.0025, +0.0075] (paired over their 3 common seeds, 95% CI)' in text
    # a candidate without validation scores: every candidate is then compared on test AUC, and the caption says so
    lines = [record('s', 'EMCDR_MF', seed, 0.86, 0.3, cold_valid={'uauc': 0.60, 'ndcg@10': 0.3}) for seed in range(3)]
    lines += [record('s', 'SSCDR', seed, 0.81, 0.3, cold_valid=None) for seed in range(3)]
    lines += [record('s', 'TMCDR_MF', seed, 0.8 + 0.01 * seed, 0.3) for seed in range(3)]
    agg = report_mod.aggregate(lines)
    assert agg.baselines['s'] == 'EMCDR_MF' and agg.chosen_on_test == {'s'}
    assert 'on the test users for s, whose results lack validation scores' in report_mod.render_markdown(agg)


def test_search_section_gives_each_grid_its_own_row():
    trials = [{'params': {}, 'valid_score': 0.3}] * 2
    lines = [record(s, 'TMCDR_ListRankMF', 0, 0.8, 0.3, trials=trials, search_space={'meta_inner_lr': grid},
                    chosen={'meta_inner_lr': grid[0]})
             for s, grid in (('a', [0.02, 0.1]), ('b', [0.1, 1.0, 10.0]))]
    rows = [line for line in report_mod.search_section(report_mod.aggregate(lines)).splitlines()
            if line.startswith('| TMCDR')]
    assert len(rows) == 2 and 'meta_inner_lr [0.02, 0.1]' in rows[0] and 'meta_inner_lr [0.1, 1.0, 10.0]' in rows[1]


def test_csv_negative_transfer_flag_is_empty_where_nothing_was_tested(tmp_path):
    import csv
    lines = [record('s', m, seed, auc, 0.3) for seed in range(3)
             for m, auc in (('TargetPop', 0.7), ('EMCDR_MF', 0.6 + 0.01 * seed))]
    lines += [record('t', 'EMCDR_MF', seed, 0.8, 0.3) for seed in range(3)]  # no floor in t
    report_mod.write_csv(report_mod.aggregate(lines), tmp_path / 'table.csv')
    rows = {row['model']: row for row in csv.DictReader(open(tmp_path / 'table.csv', encoding='utf-8'))}
    assert rows['TargetPop']['s/uauc/negative_transfer'] == '' and rows['EMCDR_MF']['s/uauc/negative_transfer'] == '1'
    assert rows['EMCDR_MF']['t/uauc/negative_transfer'] == ''
