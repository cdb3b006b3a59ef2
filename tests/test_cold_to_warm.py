"""The report's cold-to-warm section and figure, on fabricated K-shot records with known answers."""

import pytest
from scipy import stats

from recbole_tmcdr.benchmark import report as report_mod
from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark.cold_to_warm import comparisons, fallback_count, router_choices, routers
from recbole_tmcdr.benchmark.stats import holm

from test_benchmark import record

# NDCG@10 per model, K and seed; AUC = NDCG + 0.5. EMCDR_MF leads at K=0, BPR at K=3 (clearly: every seed).
NDCG = {'TargetPop': {0: [.20, .21, .19], 3: [.20, .20, .21]},
        'EMCDR_MF': {0: [.30, .33, .31], 3: [.31, .30, .32]},
        'BPR': {0: [.10, .12, .11], 3: [.40, .43, .41]}}
# the router served EMCDR_MF at K=0 on every seed; at K=3 BPR on seeds 0 and 1, EMCDR_MF on seed 2 (chosen on
# validation), and one user per seed fell back to popularity at K=3
CHOICE = [{'0': 'EMCDR_MF', '3': 'BPR'}, {'0': 'EMCDR_MF', '3': 'BPR'}, {'0': 'EMCDR_MF', '1': 'EMCDR_MF'}]
ROUTED = {0: NDCG['EMCDR_MF'][0], 3: [.40, .43, .32]}


def kshot(values, seed, fallback=None):
    return {str(k): {'ndcg@10': v[seed], 'uauc': v[seed] + .5, 'n_users': 10, 'n_excluded': 0,
                     **({} if fallback is None else {'n_fallback': fallback[k]})} for k, v in values.items()}


def fabricated():
    lines = []
    for seed in range(3):
        for model, values in NDCG.items():
            lines.append(record('s', model, seed, values[0][seed] + .5, values[0][seed], kshot(values, seed)))
        lines.append(record('s', 'KRouter', seed, ROUTED[0][seed] + .5, ROUTED[0][seed],
                            kshot(ROUTED, seed, fallback={0: 0, 3: 1}), routing={'choice': CHOICE[seed]}))
    return lines


def test_leaders_router_choice_and_margins_with_known_answers():
    agg = report_mod.aggregate(fabricated())
    assert routers(agg) == ['KRouter']
    leads, margins = comparisons(agg)
    by_key = {(lead.k, lead.metric): lead for lead in leads}
    assert (by_key[(0, 'NDCG@10')].leader, by_key[(0, 'NDCG@10')].runner_up) == ('EMCDR_MF', 'TargetPop')
    assert (by_key[(3, 'AUC')].leader, by_key[(3, 'AUC')].runner_up) == ('BPR', 'EMCDR_MF')
    # one Holm family: 4 leads + 4 margins (the router equals EMCDR_MF at K=0: no variation, no test)
    tested = [t for t in [lead.test for lead in leads] + [m.test for m in margins] if t.p is not None]
    assert len(tested) == 6
    p = stats.ttest_rel(NDCG['BPR'][3], NDCG['EMCDR_MF'][3]).pvalue
    assert by_key[(3, 'NDCG@10')].test.p == pytest.approx(p)
    assert by_key[(3, 'NDCG@10')].test.p_holm == pytest.approx(holm([t.p for t in tested])[
        tested.index(by_key[(3, 'NDCG@10')].test)])
    margin = next(m for m in margins if (m.k, m.metric) == (3, 'NDCG@10'))
    assert margin.best == 'BPR' and margin.test.diff == pytest.approx((0 + 0 - .09) / 3)
    assert router_choices(agg, 's', 'KRouter', 3) == {'BPR': 2, 'EMCDR_MF': 1}  # seed 2: K=3 takes K=1's choice
    assert fallback_count(agg, 's', 'KRouter', 3) == (3, 30)


def test_section_and_figure(tmp_path):
    for line in fabricated():
        results_io.append_record(tmp_path / 'results.jsonl', line)
    out = report_mod.write_report(str(tmp_path))
    markdown = out['markdown']
    assert '## Cold to warm: who leads at each K, and the router' in markdown
    assert 'Leader on the test users by K, NDCG@10: K=0 EMCDR_MF, K=3 BPR; AUC: K=0 EMCDR_MF, K=3 BPR.' in markdown
    assert 'KRouter: on NDCG@10 below the best single method at K=3 (BPR, Δ -0.0300' in markdown
    row = next(line for line in markdown.splitlines() if line.startswith('| 3 |'))
    assert 'BPR (2/3), EMCDR_MF (1/3)' in row and '3 of 30' in row
    from PIL import Image
    assert out['cold_to_warm'].endswith('cold_to_warm.png')
    assert Image.open(out['cold_to_warm']).size[0] == 1000
