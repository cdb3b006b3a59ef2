"""The benchmark: statistics on fabricated results with known answers, the results file (atomic lines, truncated
tail, resume), hyperparameter selection on validation only, the report files, and tiny end-to-end runs."""

import json
import math
import os
import warnings

import numpy as np
import pytest
from scipy import stats

from recbole_tmcdr.benchmark import figures as figures_mod
from recbole_tmcdr.benchmark import report as report_mod
from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark import runner
from recbole_tmcdr.benchmark import worker
from recbole_tmcdr.benchmark.__main__ import main as benchmark_main
from recbole_tmcdr.benchmark.search_space import DEFAULT_SEARCH_SPACE, grid, model_search_space
from recbole_tmcdr.benchmark.spec import BenchmarkSpec, SpecError

FAST_PHASES = '--train_epochs=["SOURCE:2","TARGET:2","OVERLAP:2"]'


def record(scenario, model, seed, auc, ndcg, kshot=None, **extra):
    line = {'scenario': scenario, 'model': model, 'seed': seed, 'config_hash': 'h',
            'cold_test': {'uauc': auc, 'ndcg@10': ndcg}, 'cold_valid': {'uauc': auc, 'ndcg@10': ndcg},
            'chosen': {'learning_rate': 0.001}, 'trials': [{'params': {}, 'valid_score': ndcg}],
            'valid_metric': 'ndcg@10', 'timings': {'trials': [1.0], 'total': 1.0}, 'lr_search': True,
            'overrides': {}, 'host': {'hostname': 'h', 'cpu_count': 2, 'torch': 'x'}}
    if kshot:
        line['kshot'] = kshot
    line.update(extra)
    return line


def table_rows(markdown):
    return {line.split('|')[1].strip(): line for line in markdown.splitlines() if line.startswith('| ')}


# ----- statistics with known answers
def test_ci_half_width_by_hand():
    summary = report_mod.summarize({0: 0.80, 1: 0.82, 2: 0.84})
    # mean 0.82, sd 0.02, t_{0.975, 2} = 4.302652729749464
    assert summary.mean == pytest.approx(0.82)
    assert summary.sd == pytest.approx(0.02)
    assert summary.half_width == pytest.approx(4.302652729749464 * 0.02 / math.sqrt(3))
    assert report_mod.format_summary(summary) == '0.8200 ± 0.0497'
    one = report_mod.summarize({5: 0.7})
    assert one.n == 1 and one.half_width is None and report_mod.format_summary(one) == '0.7000'
    assert report_mod.summarize({0: None, 1: float('nan')}) is None


def fabricated(tmcdr_auc, tmcdr_ndcg=None):
    """3 seeds; EMCDR_MF is the best non-TMCDR model (TMCDR_BPR is higher but may not be the baseline)."""
    emcdr_auc, emcdr_ndcg = [0.80, 0.81, 0.79], [0.30, 0.31, 0.29]
    lines = []
    for seed in range(3):
        lines += [record('s', 'TargetPop', seed, 0.70, 0.20),
                  record('s', 'EMCDR_MFori', seed, 0.69 - 0.001 * seed, 0.19),
                  record('s', 'EMCDR_MF', seed, emcdr_auc[seed], emcdr_ndcg[seed]),
                  record('s', 'TMCDR_BPR', seed, 0.90, 0.40),
                  record('s', 'TMCDR_MF', seed, tmcdr_auc[seed], (tmcdr_ndcg or emcdr_ndcg)[seed])]
    return lines, emcdr_auc


def test_paired_t_test_against_best_other_model_and_star_iff_significant():
    improved = [0.821, 0.829, 0.812]  # +0.021, +0.019, +0.022: consistent
    lines, emcdr = fabricated(improved)
    agg = report_mod.aggregate(lines)
    assert agg.baselines['s'] == 'EMCDR_MF'  # not TMCDR_BPR, although its AUC is higher
    test = agg.tests[('s', 'TMCDR_MF')]['uauc']
    expected = stats.ttest_rel(improved, emcdr)
    assert test.n == 3 and test.p == pytest.approx(expected.pvalue)
    assert test.diff == pytest.approx(np.mean(np.subtract(improved, emcdr)))
    low, high = expected.confidence_interval(0.95)
    assert (test.ci_low, test.ci_high) == (pytest.approx(low), pytest.approx(high))
    # the family: TMCDR_MF (AUC; its NDCG is untested) and TMCDR_BPR (AUC, NDCG) against EMCDR_MF. TMCDR_MF has
    # the smallest of the 3 p-values, so Holm multiplies it by 3.
    assert test.p_holm == pytest.approx(3 * expected.pvalue)
    assert test.p_holm < 0.05 and agg.starred('s', 'TMCDR_MF', 'uauc')
    # NDCG identical to the baseline -> scipy gives NaN -> no test, no star
    assert agg.tests[('s', 'TMCDR_MF')]['ndcg@10'].p is None and not agg.starred('s', 'TMCDR_MF', 'ndcg@10')
    row = table_rows(report_mod.main_table(agg))['TMCDR_MF']
    assert row.count('\\*') == 1 and '\\*↓' not in row

    noisy = [0.85, 0.78, 0.80]  # differences +0.05, -0.03, +0.01
    lines, emcdr = fabricated(noisy)
    agg = report_mod.aggregate(lines)
    p = agg.tests[('s', 'TMCDR_MF')]['uauc'].p
    assert p == pytest.approx(stats.ttest_rel(noisy, emcdr).pvalue) and p >= 0.05
    assert '\\*' not in table_rows(report_mod.main_table(agg))['TMCDR_MF']


def test_a_router_is_never_the_best_other_model():
    # KRouter may serve TMCDR_MF itself: testing TMCDR_MF against it would compare TMCDR_MF with itself
    lines, _ = fabricated([0.821, 0.829, 0.812])
    lines += [record('s', 'KRouter', seed, 0.95, 0.5, routing={'choice': {'0': 'TMCDR_MF'}}) for seed in range(3)]
    agg = report_mod.aggregate(lines)
    assert agg.baselines['s'] == 'EMCDR_MF' and agg.tests[('s', 'TMCDR_MF')]['uauc'].p is not None


def test_significantly_worse_is_marked_as_such():
    lines, _ = fabricated([0.700, 0.709, 0.692])
    agg = report_mod.aggregate(lines)
    assert agg.starred('s', 'TMCDR_MF', 'uauc') and agg.significantly_worse('s', 'TMCDR_MF', 'uauc')
    assert '\\*↓' in table_rows(report_mod.main_table(agg))['TMCDR_MF']


def test_bold_best_floors_first_and_negative_transfer():
    lines, _ = fabricated([0.821, 0.829, 0.812])
    agg = report_mod.aggregate(lines, model_order=['EMCDR_MF', 'TMCDR_MF'])
    assert agg.models[0] == 'TargetPop' and agg.models[1:3] == ['EMCDR_MF', 'TMCDR_MF']
    rows = table_rows(report_mod.main_table(agg))
    assert '**0.9000' in rows['TMCDR_BPR'] and '**' not in rows['EMCDR_MF']
    assert 'TargetPop (target-only)' in rows
    # EMCDR_MFori (0.69) does not beat TargetPop (0.70): negative transfer
    assert '†' in rows['EMCDR_MFori'] and '†' not in rows['EMCDR_MF'] and '†' not in rows['TargetPop (target-only)']
    text = report_mod.negative_transfer_text(agg)
    assert 'EMCDR_MFori' in text and 'TargetPop' in text and 'EMCDR_MF ' not in text



def test_a_scenario_with_only_its_floors_finished_claims_nothing_about_transfer():
    # a spec still running: before, "every transfer model has a mean AUC above the floor" with no transfer model
    lines, _ = fabricated([0.821, 0.829, 0.812])
    lines += [record('u', model, seed, 0.7, 0.2) for model in ('TargetPop', 'BPR') for seed in range(3)]
    agg = report_mod.aggregate(lines)
    text = report_mod.negative_transfer_text(agg)
    assert '- u: no transfer model finished yet: nothing to compare with the floor' in text
    assert report_mod.verdict_summary(agg).splitlines()[-1] == '- **u** (3 seeds): no compared pair run.'


def test_selected_hyperparameters_name_each_trials_values():
    from recbole_tmcdr.benchmark.run_sections import hyperparameter_section
    trials = [{'params': {'learning_rate': lr, 'meta_inner_lr': lam}, 'valid_score': score}
              for (lr, lam), score in zip([(0.001, 0.1), (0.001, 1.0), (0.01, 0.1), (0.01, 1.0)], [.1, .2, .3, None])]
    agg = report_mod.aggregate([record('s', 'TMCDR_MF', 0, .7, .3, trials=trials,
                                       chosen={'learning_rate': 0.01, 'meta_inner_lr': 0.1})])
    row = table_rows(hyperparameter_section(agg))['s']
    assert ('| learning_rate=0.01, meta_inner_lr=0.1 | ndcg@10 by learning_rate/meta_inner_lr: 0.001/0.1 → 0.1000, '
            '0.001/1.0 → 0.2000, 0.01/0.1 → 0.3000, 0.01/1.0 → – |') in row

def test_every_target_only_model_is_a_labelled_floor():
    lines, _ = fabricated([0.821, 0.829, 0.812])
    # LightGCN uses no source data: a floor like TargetPop, and here the highest one (0.75 > EMCDR_MFori 0.69
    # and > TargetPop 0.70), so it decides the negative-transfer flags.
    lines += [record('s', 'LightGCN', seed, 0.75, 0.25) for seed in range(3)]
    agg = report_mod.aggregate(lines)
    assert agg.models[:2] == ['TargetPop', 'LightGCN']
    assert ('LightGCN', pytest.approx(0.75)) in agg.floors['s']
    rows = table_rows(report_mod.main_table(agg))
    assert 'LightGCN (target-only)' in rows and '†' not in rows['LightGCN (target-only)']
    assert 'LightGCN (AUC 0.7500)' in report_mod.negative_transfer_text(agg)


def test_tmcdr_vs_emcdr_pairs_with_known_p_values():
    lines = []
    for seed in range(3):
        lines += [record('s', 'EMCDR_MF', seed, 0.80 + 0.01 * seed, 0.30 + 0.01 * seed),
                  record('s', 'TMCDR_MF', seed, 0.82 + 0.012 * seed, 0.30 + 0.01 * seed + 0.001 * (-1) ** seed),
                  record('s', 'EMCDR_BPR', seed, 0.80, 0.3)]
    rows = {line.split('|')[2].strip(): line for line in
            report_mod.pairs_table(report_mod.aggregate(lines).comparisons).splitlines()[2:]}
    # AUC differences .020/.022/.024: t = .022 / (.002 / sqrt 3) = 19.05, two-sided p (2 df) = 0.00274
    auc_p = stats.ttest_rel([0.82, 0.832, 0.844], [0.80, 0.81, 0.82]).pvalue
    assert auc_p == pytest.approx(0.00274, abs=1e-5)
    cells = [c.strip() for c in rows['TMCDR_MF vs EMCDR_MF'].split('|')]
    # seeds, then per metric: means, difference [95% CI], raw p, Holm p over the family {AUC, NDCG}, verdict
    assert cells[3:9] == ['3', '0.8320 vs 0.8100', '+0.0220 [+0.0170, +0.0270]', '0.003', '0.005 \\*', 'better']
    assert cells[13] == 'not significant'  # NDCG differences +-.001
    assert list(rows) == ['TMCDR_MF vs EMCDR_MF']  # TMCDR_BPR was not run: no BPR row
    # a fourth EMCDR_MF seed without its TMCDR_MF run: the means beside the Δ stay those of the paired seeds
    lines.append(record('s', 'EMCDR_MF', 3, 0.50, 0.10))
    rows = {line.split('|')[2].strip(): line for line in
            report_mod.pairs_table(report_mod.aggregate(lines).comparisons).splitlines()[2:]}
    assert [c.strip() for c in rows['TMCDR_MF vs EMCDR_MF'].split('|')][3:5] == ['3', '0.8320 vs 0.8100']


def test_pairs_summary_is_generated_from_the_tests():
    lines = []
    for seed in range(3):
        lines += [record('s', 'EMCDR_MF', seed, 0.80 + 0.01 * seed, 0.30 + 0.01 * seed),
                  record('s', 'TMCDR_MF', seed, 0.82 + 0.012 * seed, 0.30 + 0.01 * seed + 0.001 * (-1) ** seed),
                  record('s', 'EMCDR_CML', seed, 0.80 + 0.01 * seed, 0.30),
                  record('s', 'TMCDR_CML', seed, 0.78 + 0.009 * seed, 0.30)]
    text = report_mod.pairs_summary_text(report_mod.aggregate(lines).comparisons)
    # MF: AUC better (p .003), NDCG n.s.; CML: AUC worse (differences -.020/-.021/-.022), NDCG equal -> no p
    assert ('**TMCDR_X vs EMCDR_X**: 3 tested comparisons (one per scenario, pair and metric); 1 not tested' in text)
    assert '- TMCDR significantly BETTER: 1 (TMCDR_MF s AUC (0.8320 vs 0.8100, Δ +0.0220 [+0.0170, +0.0270]' in text
    assert '- TMCDR significantly WORSE: 1 (TMCDR_CML s AUC' in text
    assert '- Not significant: 1.' in text
    assert 'SSCDR' not in text  # no SSCDR runs: no section
    assert report_mod.pairs_summary_text(report_mod.aggregate(lines[:1]).comparisons) is None


def test_summary_gives_the_verdict_per_scenario_and_the_run_time(tmp_path):
    lines = []
    for seed in range(3):
        finished = f'2026-01-01T0{seed}:00:00+00:00'
        lines += [record('s', 'TargetPop', seed, 0.85, 0.2, finished_at=finished),
                  record('s', 'EMCDR_MF', seed, 0.80 + 0.01 * seed, 0.30 + 0.01 * seed, finished_at=finished),
                  record('s', 'TMCDR_MF', seed, 0.82 + 0.012 * seed, 0.30 + 0.01 * seed + 0.001 * (-1) ** seed,
                         finished_at=finished)]
    lines += [record('t', model, seed, 0.8, 0.3) for model in ('EMCDR_MF', 'TMCDR_MF') for seed in range(2)]
    agg = report_mod.aggregate(lines)
    summary = report_mod.verdict_summary(agg).splitlines()
    # s: AUC better (the known test above: Δ +.022, Holm p over this report's family), NDCG n.s.; TMCDR_MF
    # (mean AUC .832) is below the floor TargetPop (.85) but one-sided tests of 3 seeds may not say so
    assert summary[0].startswith('- **s** (3 seeds): TMCDR_MF vs EMCDR_MF: AUC BETTER (Δ +0.0220 [+0.0170, +0.0270], '
                                 'Holm p ')
    assert 'NDCG@10 n.s. (Δ ' in summary[0] and 'negative transfer (below TargetPop, one-sided, Holm): AUC ' in summary[0]
    assert summary[1] == '- **t** (2 seeds): TMCDR_MF vs EMCDR_MF: AUC n/a (n=2), NDCG@10 n/a (n=2).'
    # three runs of 1 s finishing at 00:00, 01:00 and 02:00 (the others have no finish time)
    # busy: 3 s of runs; span: 2 h (first start to last finish)
    assert report_mod.run_time_text(agg).startswith('Run time 0.0 h over 9 runs; wall time 0.0 h while runs were '
                                                    'running (2.0 h from 2025-12-31 23:59')
    from recbole_tmcdr.benchmark.run_sections import busy_seconds
    assert busy_seconds([0, 5, 20, 1], [10, 12, 30, 2]) == 22.0 and busy_seconds([], []) == 0.0
    report_mod.write_runs_csv(agg, tmp_path / 'runs.csv')
    import pandas as pd
    runs = pd.read_csv(tmp_path / 'runs.csv')
    assert len(runs) == len(lines) and runs.loc[0, 'chosen'] == 'learning_rate=0.001'
    assert list(runs.columns[:4]) == ['scenario', 'model', 'seed', 'chosen'] and 'test_uauc' in runs.columns


def test_report_header_names_the_cpus_and_warns_when_they_differ():
    """Records made on two CPU models (whose float rounding differs) are flagged; older records without a CPU are
    listed as before."""
    def on(cpu, seed):
        line = record('a', 'M1', seed, 0.7, 0.2, code_version='v')
        line['host'] = dict(line['host'], **({'cpu': cpu} if cpu else {}))
        return line
    one_cpu = report_mod.header_notes(report_mod.aggregate([on('AMD EPYC', 0), on('AMD EPYC', 1), on(None, 2)]))
    assert 'h (AMD EPYC, 2 CPUs, torch x)' in one_cpu and 'h (2 CPUs, torch x)' in one_cpu
    assert 'CPU models' not in one_cpu
    two_cpus = report_mod.header_notes(report_mod.aggregate([on('AMD EPYC', 0), on('Intel Xeon', 1)]))
    assert 'made on 2 CPU models, whose float rounding differs' in two_cpus


def test_report_header_warns_when_runs_of_one_seed_were_made_on_different_splits():
    split = {'n_cold_test': 93, 'seed': 0}
    lines = [record('a', 'M1', 0, 0.7, 0.2, split_stats=split), record('a', 'M2', 0, 0.7, 0.2, split_stats=split),
             record('a', 'M1', 1, 0.7, 0.2, split_stats=dict(split, seed=1))]
    assert 'different splits' not in report_mod.header_notes(report_mod.aggregate(lines))
    lines.append(record('a', 'M2', 1, 0.7, 0.2, split_stats=dict(split, seed=1, n_cold_test=40)))
    assert 'different splits (a seed 1)' in report_mod.header_notes(report_mod.aggregate(lines))


def test_report_files_render(tmp_path):
    kshot = {str(k): {'uauc': 0.8 + 0.01 * k, 'ndcg@10': 0.3, 'n_users': 10, 'n_excluded': 0} for k in (0, 1, 3)}
    lines = []
    for seed in range(3):
        for scenario in ('douban_music_book', 'ml_genre'):
            lines += [record(scenario, 'TargetPop', seed, 0.70 + 0.01 * seed, 0.2, kshot),
                      record(scenario, 'EMCDR_MF', seed, 0.80 + 0.01 * seed, 0.3, kshot),
                      record(scenario, 'TMCDR_MF', seed, 0.82 + 0.012 * seed, 0.31, kshot),
                      record(scenario, 'SSCDR', seed, 0.79, 0.28), record(scenario, 'TMCDR_CML', seed, 0.8, 0.29)]
    for line in lines:
        results_io.append_record(tmp_path / 'results.jsonl', line)
    out = report_mod.write_report(str(tmp_path))
    for name in ('table.md', 'table.csv', 'runs.csv', 'figure1.png', 'cold_to_warm.png', 'differences.png'):
        assert (tmp_path / name).stat().st_size > 0, name
    from PIL import Image
    assert Image.open(tmp_path / 'differences.png').size[0] == 1000  # readable at page width
    assert Image.open(tmp_path / 'figure1.png').size[0] == 1000
    markdown = (tmp_path / 'table.md').read_text()
    assert markdown == out['markdown']
    # the paper's numbers for its scenario 6 next to ours
    assert 'paper scenario 6' in markdown and '0.8297' in markdown and '0.8442' in markdown
    assert '## K-shot' in markdown and 'K=3' in markdown
    assert '## TMCDR_X vs EMCDR_X' in markdown
    header = (tmp_path / 'table.csv').read_text().splitlines()[0]
    assert 'douban_music_book/uauc/mean' in header and 'ml_genre/ndcg@10/ci95' in header
    assert 'douban_music_book/uauc/baseline' in header and 'ml_genre/ndcg@10/negative_transfer' in header
    assert figures_mod.figure1_pairs(out['aggregate']) == [('MF', 'EMCDR_MF', 'TMCDR_MF'),
                                                          ('CML', 'SSCDR', 'TMCDR_CML')]


# ----- the results file
def test_truncated_last_line_is_ignored_with_a_warning_and_repaired(tmp_path):
    path = tmp_path / 'results.jsonl'
    results_io.append_record(path, record('s', 'A', 0, 0.8, 0.3))
    results_io.append_record(path, record('s', 'A', 1, 0.8, 0.3))
    with open(path, 'ab') as f:
        f.write(b'{"scenario": "s", "model": "A", "se')
    with pytest.warns(results_io.ResultsFileWarning, match='truncated'):
        loaded = results_io.load_records(path)
    assert [r['seed'] for r in loaded] == [0, 1]
    assert results_io.repair_truncated_tail(path) == b'{"scenario": "s", "model": "A", "se'
    results_io.append_record(path, record('s', 'A', 2, 0.8, 0.3))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert [r['seed'] for r in results_io.load_records(path)] == [0, 1, 2]
    assert list(tmp_path.glob('results.jsonl.truncated-*'))


def test_records_are_plain_json():
    line = results_io.to_jsonable({'a': np.float32(0.5), 'b': float('nan'), 3: [np.int64(2)]})
    assert line == {'a': 0.5, 'b': None, '3': [2]}
    json.dumps(line, allow_nan=False)


# ----- search space and selection
def test_search_space_from_the_model_yaml(tmp_path, monkeypatch):
    assert model_search_space('TargetPop') == {}
    assert model_search_space('EMCDR_MF') == DEFAULT_SEARCH_SPACE
    assert model_search_space('EMCDR_MF', {'EMCDR_MF': {'learning_rate': 0.01}}) == {'learning_rate': [0.01]}
    first, second = tmp_path / 'a.yaml', tmp_path / 'b.yaml'
    first.write_text('benchmark_search_space: {learning_rate: [1e-3]}\n')
    second.write_text('benchmark_search_space: {learning_rate: [1e-3, 1e-2], meta_loss_reduction: [sum, mean]}\n')
    monkeypatch.setattr('recbole_tmcdr.config.plugin_yaml_files', lambda model: [first, second])
    space = model_search_space('TMCDR_MF')
    assert space == {'learning_rate': [0.001, 0.01], 'meta_loss_reduction': ['sum', 'mean']}
    assert len(grid(space)) == 4
    assert grid(space, fixed={'learning_rate': 0.005}) == [{'meta_loss_reduction': 'sum'},
                                                          {'meta_loss_reduction': 'mean'}]


def fake_result(valid, test, bigger=True):
    return {'best_valid_score': valid, 'valid_score_bigger': bigger,
            'best_valid_result': {'ndcg@10': valid, 'uauc': valid}, 'test_result': {'ndcg@10': test, 'uauc': test},
            'split_stats': {'n_cold_test': 3}}


def test_selection_uses_validation_never_test(tmp_path, monkeypatch):
    # valid best at lr=0.005; test best at lr=0.001 (must NOT be chosen); lr=0.01 diverges (error)
    outcomes = {0.001: (0.20, 0.99), 0.002: (0.25, 0.50), 0.005: (0.30, 0.40)}
    calls = []

    def fake_run_recbole_cdr(model, dataset=None, config_file_list=None, config_dict=None, saved=True):
        calls.append((os.getcwd(), dict(config_dict), saved))
        lr = config_dict['learning_rate']
        if lr not in outcomes:
            raise ValueError('Training loss is nan')
        return fake_result(*outcomes[lr])

    monkeypatch.setattr('recbole_tmcdr.quick_start.run_recbole_cdr', fake_run_recbole_cdr)
    spec = BenchmarkSpec(scenarios=['ml_genre'], models=['EMCDR_MF'], seeds=[3], out=str(tmp_path / 'out'),
                         overrides={'embedding_size': 8}).validate()
    task = runner.plan(spec, str(tmp_path / 'out'), str(tmp_path / 'cache'))[0]
    events = []
    line = worker.run_one(task, events.append)
    assert line['chosen'] == {'learning_rate': 0.005} and line['chosen_trial'] == 2
    assert line['cold_test']['uauc'] == 0.40 and line['valid_score'] == 0.30
    assert [t['valid_score'] for t in line['trials']] == [0.20, 0.25, 0.30, None]
    assert 'nan' in line['trials'][3]['error'] and 'cold_test' not in line['trials'][0]
    assert all(cwd == task['run_dir'] and not saved and cfg['seed'] == 3 and cfg['embedding_size'] == 8
               and cfg['cache_dir'] == str(tmp_path / 'cache') for cwd, cfg, saved in calls)
    assert [e['event'] for e in events].count('trial_end') == 4 and line['timings']['total'] >= 0
    assert set(line['host']) >= {'platform', 'cpu', 'cpu_count', 'torch'} and line['host']['cpu']


@pytest.mark.parametrize('failing_lr, fails', [(0.005, True), (0.002, False)])
def test_a_trial_failing_on_the_test_users_fails_the_run_only_if_it_won_on_validation(tmp_path, monkeypatch,
                                                                                       failing_lr, fails):
    # lr=0.005 is best on validation: if its test fails, reporting lr=0.002 instead would let the test choose
    from recbole_tmcdr.benchmark.worker import FailedAfterValidation
    valid = {0.001: 0.20, 0.002: 0.25, 0.005: 0.30, 0.01: 0.10}

    def fake_run_recbole_cdr(model, dataset=None, config_file_list=None, config_dict=None, saved=True):
        lr = config_dict['learning_rate']
        if lr == failing_lr:
            error = ValueError('The model scored 1 of 3 evaluated users with NaN')
            error.after_validation = {'valid_score': valid[lr], 'bigger': True, 'grid': []}  # run_recbole_cdr's mark
            raise error
        return fake_result(valid[lr], 0.50)

    monkeypatch.setattr('recbole_tmcdr.quick_start.run_recbole_cdr', fake_run_recbole_cdr)
    spec = BenchmarkSpec(scenarios=['ml_genre'], models=['EMCDR_MF'], seeds=[3], out=str(tmp_path / 'out'),
                         overrides={'embedding_size': 8}).validate()
    task = runner.plan(spec, str(tmp_path / 'out'), str(tmp_path / 'cache'))[0]
    if fails:
        with pytest.raises(FailedAfterValidation, match=r"\{'learning_rate': 0.005\} is the best on validation "
                                                        r'\(0.3000\) but failed on the test users \(ValueError'):
            worker.run_one(task)
    else:  # a trial that lost on validation cannot change the choice: the run stands
        line = worker.run_one(task)
        assert line['chosen'] == {'learning_rate': 0.005}
        assert line['trials'][1]['failed_after_validation'] == {'valid_score': 0.25, 'bigger': True}


def test_runs_trained_together_fail_alone_when_their_own_setting_fails_on_the_test_users(monkeypatch, tmp_path):
    # TMCDR_MF (theta) and TMCDRAdapted_MF (adapted) trained together; the adapted setting's test fails
    outcomes = [{'settings': {'meta_scoring': 'theta'}, **fake_result(0.40, 0.80)},
                {'settings': {'meta_scoring': 'adapted'}, 'error': 'ValueError: NaN',
                 'failed_after_validation': {'valid_score': 0.35}}]
    monkeypatch.setattr('recbole_tmcdr.quick_start.run_recbole_cdr',
                        lambda **kwargs: {**fake_result(0.40, 0.80), 'inference_grid': outcomes})
    tasks = [{'run_id': f's/{model}/seed0', 'model': model, 'seed': 0, 'trials': [{}], 'base_config': {},
              'run_kwargs': {}, 'scenario': 's', 'defaults': {}, 'valid_metric': 'ndcg@10', 'config_hash': 'h',
              'scenario_source': 's', 'search_space': {}, 'lr_search': False, 'overrides': {}, 'code_version': 'v',
              'run_dir': str(tmp_path / model)} for model in ('TMCDR_MF', 'TMCDRAdapted_MF')]
    members = [(tasks[0], 0, {'meta_scoring': 'theta'}), (tasks[1], 0, {'meta_scoring': 'adapted'})]
    unit, _ = worker._run_unit(tasks[0], members, {}, ['meta_scoring'], None)
    assert unit[0][0]['best_valid_score'] == 0.40 and unit[1][:2] == (None, 'ValueError: NaN')
    entries = {task['run_id']: {0: (worker._trial_entry(task, 0, outcome[0], outcome[1], 1.0, members, outcome[2]),
                                          outcome[0])}
               for task, outcome in zip(tasks, unit)}
    assert worker._record(tasks[0], entries['s/TMCDR_MF/seed0'], {}, 1.0, 'now')['valid_score'] == 0.40
    with pytest.raises(worker.FailedAfterValidation, match=r'\(0.3500\) but failed on the test users'):
        worker._record(tasks[1], entries['s/TMCDRAdapted_MF/seed0'], {}, 1.0, 'now')


def test_a_failed_test_of_the_chosen_grid_setting_blames_that_setting_only(monkeypatch, tmp_path):
    # the unit's own test evaluates the setting it chose (TMCDR_MF's); TMCDRAdapted_MF's was never tested
    error = MemoryError('no room')
    error.after_validation = {'valid_score': 0.40, 'bigger': True,
                              'grid': [{'settings': {'meta_scoring': 'theta'}, 'valid_score': 0.40}]}

    def failing(**kwargs):
        raise error

    monkeypatch.setattr('recbole_tmcdr.quick_start.run_recbole_cdr', failing)
    tasks = [{'run_id': f's/{model}/seed0', 'model': model, 'seed': 0, 'trials': [{}], 'base_config': {},
              'run_kwargs': {}, 'run_dir': str(tmp_path / model)} for model in ('TMCDR_MF', 'TMCDRAdapted_MF')]
    members = [(tasks[0], 0, {'meta_scoring': 'theta'}), (tasks[1], 0, {'meta_scoring': 'adapted'})]
    unit, _ = worker._run_unit(tasks[0], members, {}, ['meta_scoring'], None)
    assert [validated for _, _, validated in unit] == [{'valid_score': 0.40, 'bigger': True},
                                                       {'valid_score': None, 'bigger': True}]
    assert 'failed_after_validation' not in worker._trial_entry(tasks[1], 0, *unit[1][:2], 1.0, members, unit[1][2])


@pytest.mark.parametrize('when', ['before', 'during'])
def test_a_run_fails_when_the_code_changed_since_it_was_planned(tmp_path, monkeypatch, when):
    from recbole_tmcdr.benchmark import inputs
    spec = BenchmarkSpec(scenarios=['ml_genre'], models=['EMCDR_MF'], seeds=[3], out=str(tmp_path / 'out'),
                         overrides={'embedding_size': 8}, lr_search=False).validate()
    task = runner.plan(spec, str(tmp_path / 'out'), str(tmp_path / 'cache'))[0]
    edited = lambda fresh=False: 'edited'  # noqa: E731

    def fake_run_recbole_cdr(model, dataset=None, config_file_list=None, config_dict=None, saved=True):
        monkeypatch.setattr(inputs, 'code_sha', edited)  # a checkout while the run trains
        return fake_result(0.25, 0.50)

    monkeypatch.setattr('recbole_tmcdr.quick_start.run_recbole_cdr', fake_run_recbole_cdr)
    if when == 'before':
        monkeypatch.setattr(inputs, 'code_sha', edited)
    with pytest.raises(RuntimeError, match='code changed since the benchmark planned this run'):
        worker.run_one(task)


def test_a_config_file_value_is_recorded_and_not_searched(tmp_path):
    # the record and the selection metric are the values the run sees: a --config-files value outranks the
    # model YAML (the record said learning_rate=0.001, the model's default, of a run made at 0.002)
    settings = tmp_path / 'settings.yaml'
    settings.write_text('learning_rate: 0.002\nvalid_metric: UAUC\n')
    for lr_search in (False, True):
        spec = BenchmarkSpec(scenarios=['ml_genre'], models=['EMCDR_MF'], seeds=[0], out=str(tmp_path / 'out'),
                             config_files=[str(settings)], lr_search=lr_search).validate()
        task = runner.plan(spec, str(tmp_path / 'out'), str(tmp_path / 'cache'))[0]
        assert task['trials'] == [{}] and task['defaults'] == {'learning_rate': 0.002}
        assert task['valid_metric'] == 'uauc'
    spec = BenchmarkSpec(scenarios=['ml_genre'], models=['EMCDR_MF'], seeds=[0], out=str(tmp_path / 'out'),
                         config_files=[str(settings)], overrides={'learning_rate': 0.005}).validate()
    assert runner.plan(spec, str(tmp_path / 'out'), 'c')[0]['defaults'] == {'learning_rate': 0.005}


# ----- resume
def fake_run(task, progress=None):
    """A run function for the executor tests (module level: picklable for worker processes and Ray); like a real run,
    it looks its model up in the registry of the process it runs in."""
    from recbole_tmcdr.registry import MODELS
    MODELS.get(task['model'])
    return record(task['scenario'], task['model'], task['seed'], 0.8 + 0.001 * task['seed'], 0.3,
                  config_hash=task['config_hash'])


def test_resume_skips_finished_runs_and_reruns_changed_configs(tiny_scenario, tmp_path):
    out = tmp_path / 'bench'
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop', 'EMCDR_MF'], seeds=[0, 1],
                         jobs=1, out=str(out), lr_search=False, overrides={'embedding_size': 8})
    tasks = runner.plan(spec.validate(), str(out), str(tmp_path / 'cache'))
    out.mkdir()
    done = tasks[1]  # TargetPop seed 1, with the current config
    stale = tasks[2]  # EMCDR_MF seed 0, finished with another config
    results_io.append_record(out / 'results.jsonl', fake_run(done))
    results_io.append_record(out / 'results.jsonl', {**fake_run(stale), 'config_hash': 'old'})

    called = []
    spy = lambda task, progress=None: called.append(task['run_id']) or fake_run(task)  # noqa: E731
    summary = runner.run_benchmark(spec, run_fn=spy, report=False, progress=False)
    assert called == ['tiny/TargetPop/seed0', 'tiny/EMCDR_MF/seed0', 'tiny/EMCDR_MF/seed1']
    assert [t['run_id'] for t in summary['skipped']] == ['tiny/TargetPop/seed1']

    called.clear()
    runner.run_benchmark(spec, run_fn=spy, report=False, progress=False)
    assert called == []
    runner.run_benchmark(spec.updated(overrides={'embedding_size': 16}), run_fn=spy, report=False, progress=False)
    assert len(called) == 4  # a changed override changes every config_hash


def test_runs_stale_because_their_raw_data_is_missing_say_so(tiny_scenario, tmp_path, capsys):
    out = tmp_path / 'bench'
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0], jobs=1, out=str(out),
                         lr_search=False)
    (task,) = runner.plan(spec.validate(), str(out), str(tmp_path / 'cache'))
    out.mkdir()
    results_io.append_record(out / 'results.jsonl', fake_run(task))
    (tiny_scenario.parent / 'target.csv').unlink()  # e.g. a machine that holds the results only
    summary = runner.run_benchmark(spec, report=False, progress=False, report_only=True)
    assert summary['stale'] == [('tiny', 'TargetPop', 0)]
    assert 'stale because their raw data cannot be read' in capsys.readouterr().err


def test_moving_the_raw_data_keeps_finished_runs(tiny_scenario, tmp_path):
    # their contents are hashed; the path they are read from is no input of a result
    def planned_hash(raw_data_path):
        spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0], out=str(tmp_path),
                             lr_search=False, overrides={'raw_data_path': raw_data_path})
        return runner.plan(spec.validate(), str(tmp_path), str(tmp_path / 'cache'))[0]['config_hash']
    assert planned_hash(str(tmp_path / 'here')) == planned_hash(str(tmp_path / 'there'))


def test_editing_a_file_a_setting_names_makes_its_runs_stale(tiny_scenario, tmp_path):
    genres = tmp_path / 'genres.csv'
    genres.write_text('item,genres\n1,a\n')
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0], out=str(tmp_path),
                         lr_search=False, overrides={'content_item_file': str(genres)}).validate()
    planned_hash = lambda: runner.plan(spec, str(tmp_path), str(tmp_path / 'cache'))[0]['config_hash']  # noqa: E731
    before = planned_hash()
    assert planned_hash() == before
    genres.write_text('item,genres\n1,b\n')  # same path, another content
    assert planned_hash() != before


def test_a_scenario_block_set_by_an_override_has_its_raw_data_hashed(tiny_scenario, tmp_path):
    import yaml
    other = tmp_path / 'other'
    other.mkdir()
    from synthetic import write_generic_scenario
    block = yaml.safe_load(write_generic_scenario(other).read_text())['scenario']
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0], out=str(tmp_path),
                         lr_search=False, overrides={'scenario': block}).validate()
    planned_hash = lambda: runner.plan(spec, str(tmp_path), str(tmp_path / 'cache'))[0]['config_hash']  # noqa: E731
    before = planned_hash()
    with open(other / 'target.csv', 'a') as f:  # the data the runs read, not the scenario file's own
        f.write('u_new,i_new\n')
    assert planned_hash() != before


def test_failed_run_is_not_recorded_as_done(tiny_scenario, tmp_path):
    def flaky(task, progress=None):
        if task['model'] == 'EMCDR_MF':
            raise RuntimeError('boom')
        return fake_run(task)

    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop', 'EMCDR_MF'], seeds=[0],
                         jobs=1, out=str(tmp_path / 'b'), lr_search=False)
    summary = runner.run_benchmark(spec, run_fn=flaky, report=False, progress=False)
    assert len(summary['finished']) == 1 and len(summary['failed']) == 1
    errors = results_io.load_records(tmp_path / 'b' / 'errors.jsonl')
    assert errors[0]['model'] == 'EMCDR_MF' and 'boom' in errors[0]['error']
    assert [r['model'] for r in results_io.load_records(tmp_path / 'b' / 'results.jsonl')] == ['TargetPop']


def test_runs_sharing_pretraining_form_one_unit_of_work(tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop', 'EMCDR_MF', 'TMCDR_MF', 'EMCDR_BPR'],
                         seeds=[0, 1], out=str(tmp_path), lr_search=False).validate()
    groups = runner.group_tasks(runner.plan(spec, str(tmp_path), str(tmp_path / 'cache')))
    ids = [[t['run_id'].split('/', 1)[1] for t in group] for group in groups]
    assert ['EMCDR_MF/seed0', 'TMCDR_MF/seed0'] in ids and ['EMCDR_MF/seed1', 'TMCDR_MF/seed1'] in ids
    assert ['TargetPop/seed0'] in ids and ['EMCDR_BPR/seed0'] in ids and len(ids) == 6


def test_router_runs_come_after_the_single_runs_it_reuses(tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop', 'KRouter', 'BPR'], seeds=[0, 1],
                         out=str(tmp_path), lr_search=False).validate()
    ids = [t['run_id'].split('/', 1)[1] for group in runner.group_tasks(runner.plan(spec, str(tmp_path), 'c'))
           for t in group]
    assert ids == ['TargetPop/seed0', 'TargetPop/seed1', 'BPR/seed0', 'BPR/seed1', 'KRouter/seed0', 'KRouter/seed1']


def test_worker_processes(tiny_scenario, tmp_path, own_model_module):
    # the fresh worker processes import the spec's modules: they know the user's model too
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['EMCDRMargin'], imports=[own_model_module],
                         seeds=[0, 1], jobs=2, out=str(tmp_path / 'b'), lr_search=False)
    summary = runner.run_benchmark(spec, run_fn=fake_run, report=False, progress=False)
    assert not summary['failed'], summary['failed']
    assert sorted(r['seed'] for r in results_io.load_records(tmp_path / 'b' / 'results.jsonl')) == [0, 1]


def test_ray_tasks(tiny_scenario, tmp_path, own_model_module):
    ray = pytest.importorskip('ray')
    import sys
    from ray import cloudpickle  # Ray serialises arguments with its own cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['EMCDRMargin'], imports=[own_model_module],
                             seeds=[0, 1], out=str(tmp_path / 'b'), lr_search=False, ray_address='auto')
        summary = runner.run_benchmark(spec, run_fn=fake_run, report=False, progress=False)
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert not summary['failed'] and len(summary['finished']) == 2, summary['failed']


@pytest.mark.parametrize('given, passed', [('local', 'local'), ('new', 'local'),
                                           ('auto', 'auto'), ('ray://host:10001', 'ray://host:10001')])
def test_ray_address_local_starts_a_cluster_of_its_own(monkeypatch, given, passed):
    # address=None would attach to the cluster that RAY_ADDRESS or /tmp/ray/ray_current_cluster names
    import types
    from recbole_tmcdr.benchmark import executor
    calls = []
    fake = types.SimpleNamespace(is_initialized=lambda: False, shutdown=lambda: None,
                                 init=lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(executor, 'import_ray', lambda: fake)
    monkeypatch.setitem(__import__('sys').modules, 'ray.util.queue', types.SimpleNamespace(Queue=lambda: None))
    with executor.open_executor(1, ray_address=given):
        pass
    assert calls[0]['address'] == passed


# ----- command line, end to end on the tiny scenario
def test_cli_validation_errors(tiny_scenario, capsys):
    with pytest.raises(SystemExit):
        benchmark_main(['--scenarios', str(tiny_scenario), '--models', 'EMCDR_MX', '--dry-run'])
    assert "Did you mean 'EMCDR_MF'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark_main(['--scenarios', str(tiny_scenario), '--models', 'TargetPop', '--seed=3', '--dry-run'])
    assert '--seeds' in capsys.readouterr().err
    with pytest.raises(SpecError, match="Unknown dataset 'ml_genr'. Did you mean 'ml_genre'"):
        BenchmarkSpec(scenarios=['ml_genr'], models=['TargetPop']).validate()
    with pytest.raises(SpecError, match='does not exist'):
        BenchmarkSpec(scenarios=['missing/scenario.yaml'], models=['TargetPop']).validate()


def test_coverage_names_missing_runs_and_their_seeds():
    lines = [record('a', 'M1', seed, 0.7, 0.2) for seed in range(3)] + [record('a', 'M2', 0, 0.7, 0.2),
                                                                        record('b', 'M1', 1, 0.7, 0.2)]
    spec = {'scenario_labels': ['a', 'b'], 'models': ['M1', 'M2'], 'seeds': [0, 1, 2]}
    agg = report_mod.aggregate(lines)
    assert 'were not compared with the current ones' in report_mod.coverage_text(agg, spec)
    agg.stale_checked = True  # as when the benchmark writes the report
    text = report_mod.coverage_text(agg, spec)
    assert text.splitlines() == [
        '5 of 12 planned runs (2 scenarios x 2 models x 3 seeds) are finished.',
        'Missing (the command above runs exactly these and keeps the rest):',
        '- a: M2 (seeds 1, 2)',
        '- b: M1 (seeds 0, 2), M2']
    agg = report_mod.aggregate(lines[:2])
    agg.stale_checked = True
    one_missing = report_mod.coverage_text(agg, {**spec, 'scenario_labels': ['a'], 'models': ['M1']})
    assert one_missing.splitlines()[0] == '2 of 3 planned runs (1 scenario x 1 model x 3 seeds) are finished.'
    assert one_missing.splitlines()[-1] == '- a: M1 (seed 2)'
    assert report_mod.coverage_text(report_mod.aggregate(lines), {}) is None
    assert report_mod.interim_text(agg, {**spec, 'scenario_labels': ['a'], 'models': ['M1']}).startswith(
        '**Interim: 2 of 3 planned runs are finished.**')
    complete = report_mod.aggregate(lines[:3])
    assert report_mod.interim_text(complete, {**spec, 'scenario_labels': ['a'], 'models': ['M1']}) is None
    assert '**Interim: 2 of 3' in report_mod.render_markdown(agg, spec={**spec, 'scenario_labels': ['a'],
                                                                         'models': ['M1']})


def test_tiny_end_to_end_benchmark(tiny_scenario, tmp_path, capsys):
    spec_file = tmp_path / 'spec.yaml'
    spec_file.write_text(f'scenarios: [{tiny_scenario}]\nmodels: [TargetPop, EMCDR_MF]\nseeds: [0, 1]\n'
                         'overrides: {state: WARNING, embedding_size: 4}\n'
                         'title: Tiny results\nnotes: "**What this run is.** A test."\n')
    argv = ['--spec', str(spec_file), '--jobs', '1', '--no-lr-search', '--out', 'bench', '--no-progress',
            '--embedding_size=8', FAST_PHASES]
    assert benchmark_main(argv) == 0
    captured = capsys.readouterr()
    lines = results_io.load_records('bench/results.jsonl')
    assert sorted((r['model'], r['seed']) for r in lines) == [('EMCDR_MF', 0), ('EMCDR_MF', 1),
                                                               ('TargetPop', 0), ('TargetPop', 1)]
    line = next(r for r in lines if r['model'] == 'EMCDR_MF')
    assert line['overrides']['embedding_size'] == 8  # the command line wins over the spec file
    assert set(line['cold_test']) >= {'uauc', 'ndcg@10'} and line['split_stats']['n_cold_test'] > 0
    assert line['chosen'] == {'learning_rate': 0.001} and len(line['trials']) == 1
    assert os.path.isdir('bench/runs/tiny/EMCDR_MF/seed1/log')
    for name in ('table.md', 'table.csv', 'figure1.png'):
        assert os.path.getsize(os.path.join('bench', name)) > 0
    assert '| TargetPop (target-only) |' in captured.out and '| EMCDR_MF |' in captured.out
    # the report says what it is and which command made it
    report = open('bench/table.md', encoding='utf-8').read()
    assert report.startswith('# Tiny results\n') and '**What this run is.** A test.' in report
    assert f'python -m recbole_tmcdr.benchmark --spec {spec_file} --jobs 1' in report
    assert '4 of 4 planned runs (1 scenario x 2 models x 2 seeds) are finished.' in report
    # --report-only with a model more: nothing runs, the report names the missing runs
    assert benchmark_main(argv + ['--models', 'TargetPop', 'EMCDR_MF', 'EMCDR_BPR', '--report-only']) == 0
    report = open('bench/table.md', encoding='utf-8').read()
    assert '4 of 6 planned runs' in report and '- tiny: EMCDR_BPR\n' in report + '\n'
    assert "**Interim: 4 of 6 planned runs are finished.**" in report and "replaced the spec's own" in report
    assert '--report-only' not in report and '--models TargetPop EMCDR_MF EMCDR_BPR' in report
    assert len(results_io.load_records('bench/results.jsonl')) == 4
    # run again: everything is done, nothing re-runs
    assert benchmark_main(argv) == 0
    assert '(4 already done, 0 to run)' in capsys.readouterr().err
    assert len(results_io.load_records('bench/results.jsonl')) == 4


def _spy_run(called):
    return lambda task, progress=None: called.append(task['run_id']) or fake_run(task)


def test_resume_redoes_a_run_whose_model_yaml_changed(tiny_scenario, tmp_path, monkeypatch):
    """Resume by content: a finished run is kept only while every YAML layer of its model is unchanged."""
    from recbole_tmcdr import config as config_mod
    layers = tmp_path / 'properties'
    layers.mkdir()
    originals = config_mod.plugin_yaml_files('EMCDR_MF')
    copies = []
    for path in originals:
        copy = layers / path.name
        copy.write_text(path.read_text())
        copies.append(copy)
    monkeypatch.setattr(config_mod, 'plugin_yaml_files', lambda model: copies if model == 'EMCDR_MF'
                        else originals)
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['EMCDR_MF'], seeds=[0], jobs=1,
                         out=str(tmp_path / 'bench'), lr_search=False)
    called = []
    runner.run_benchmark(spec, run_fn=_spy_run(called), report=False, progress=False)
    runner.run_benchmark(spec, run_fn=_spy_run(called), report=False, progress=False)
    assert called == ['tiny/EMCDR_MF/seed0']  # the second invocation resumed

    model_yaml = copies[-1]  # the most specific layer, EMCDR_MF.yaml
    model_yaml.write_text(model_yaml.read_text() + '\nmapping_batch_size: 64\n')
    summary = runner.run_benchmark(spec, run_fn=_spy_run(called), report=False, progress=False)
    assert called == ['tiny/EMCDR_MF/seed0'] * 2 and summary['stale'] == [('tiny', 'EMCDR_MF', 0)]


def test_resume_redoes_a_run_whose_raw_data_changed(tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0], jobs=1,
                         out=str(tmp_path / 'bench'), lr_search=False)
    called = []
    runner.run_benchmark(spec, run_fn=_spy_run(called), report=False, progress=False)
    target = tiny_scenario.parent / 'target.csv'
    target.write_text(target.read_text() + '999,1\n')
    runner.run_benchmark(spec, run_fn=_spy_run(called), report=False, progress=False)
    assert called == ['tiny/TargetPop/seed0'] * 2


def test_report_only_lists_stale_runs_and_leaves_them_out(tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop', 'EMCDR_MF'], seeds=[0, 1, 2], jobs=1,
                         out=str(tmp_path / 'bench'), lr_search=False)
    tasks = runner.plan(spec.validate(), spec.out, str(tmp_path / 'cache'))
    os.makedirs(spec.out)
    for task in tasks:  # EMCDR_MF seed 0 was made from other inputs (e.g. an older model YAML)
        stale = task['run_id'] == 'tiny/EMCDR_MF/seed0'
        results_io.append_record(os.path.join(spec.out, 'results.jsonl'),
                                 {**fake_run(task), 'config_hash': 'old' if stale else task['config_hash']})
    summary = runner.run_benchmark(spec, report_only=True, progress=False)
    markdown = summary['report']['markdown']
    assert '5 of 6 planned runs' in markdown and 'Stale, left out of every table: 1 run' in markdown
    assert '- tiny: EMCDR_MF (seed 0)' in markdown
    assert summary['report']['aggregate'].summary('tiny', 'EMCDR_MF', 'uauc').n == 2


def test_a_results_line_without_seed_does_not_stop_resume(tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0], jobs=1,
                         out=str(tmp_path / 'bench'), lr_search=False)
    os.makedirs(spec.out)
    results_io.append_record(os.path.join(spec.out, 'results.jsonl'), {'scenario': 'tiny', 'model': 'TargetPop'})
    called = []
    with pytest.warns(results_io.ResultsFileWarning, match='no valid scenario/model/seed'):
        runner.run_benchmark(spec, run_fn=_spy_run(called), report=False, progress=False)
    assert called == ['tiny/TargetPop/seed0']


def test_a_config_file_without_settings_is_refused_when_planned(tmp_path):
    empty = tmp_path / 'empty.yaml'
    empty.write_text('# nothing yet\n')
    spec = BenchmarkSpec(scenarios=['ml_genre'], models=['EMCDR_MF'], seeds=[0], out=str(tmp_path / 'out'),
                         config_files=[str(empty)]).validate()
    with pytest.raises(SpecError, match="empty.yaml' holds no `key: value` mapping"):
        runner.plan(spec, str(tmp_path / 'out'), 'c')


def test_wall_time_counts_runs_trained_together_as_one_training():
    """Runs trained together each carry their share of the training's seconds and finish together: the wall
    time counts the whole training once (from ``started_at``, or for older records from the shares' sum)."""
    from recbole_tmcdr.benchmark.run_sections import run_time

    def record(model, partner, total, finished='2026-01-01T01:00:00+00:00', **extra):
        trials = [{'params': {}, 'trained_with': [{'model': model, 'trial': 0}, {'model': partner, 'trial': 0}]}]
        return {'scenario': 's', 'seed': 0, 'model': model, 'trials': trials, 'timings': {'total': total},
                'finished_at': finished, **extra}

    pair = [record('TMCDR_MF', 'TMCDRAdapted_MF', 600.0), record('TMCDRAdapted_MF', 'TMCDR_MF', 1200.0)]
    alone = {'scenario': 's', 'seed': 1, 'model': 'EMCDR_MF', 'trials': [{'params': {}}],
             'timings': {'total': 360.0}, 'finished_at': '2026-01-01T01:00:00+00:00'}
    timing = run_time(pair + [alone])
    assert timing['run_h'] == 0.6 and abs(timing['busy_h'] - 0.5) < 1e-9  # 1800 s of pair, the 360 s inside it
    started = [dict(r, started_at='2026-01-01T00:00:00+00:00') for r in pair]
    assert abs(run_time(started)['busy_h'] - 1.0) < 1e-9  # the recorded start wins over the estimate
