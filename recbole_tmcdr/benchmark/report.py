"""Report of a benchmark directory: ``python -m recbole_tmcdr.benchmark.report OUT``.

Reads ``OUT/results.jsonl`` (the last line of each (scenario, model, seed)) and writes:

* ``table.md`` / ``table.csv``: Table-1 style, rows = models (target-only floors first), columns = scenario x
  {AUC (``uauc``: per-user AUC averaged over users, the paper's AUC), NDCG@10} on the cold TEST users, mean ±
  95% CI over seeds (t-distribution, ``mean ± t_{0.975,n-1} sd / sqrt(n)``; no CI for one seed). Best mean
  per column in bold. ``*``: paired t-test over seeds (``scipy.stats.ttest_rel``, paired by seed, two-sided,
  at least 3 seeds) of each ``TMCDR_*`` model against the best other non-TMCDR model of the scenario (by mean
  test AUC) with Holm-adjusted p < 0.05 (the family: every TMCDR test of the report). ``†``: negative
  transfer, where a one-sided paired test (Holm-adjusted over the transfer models) finds a model's test AUC
  below the best target-only floor (``TargetPop``, ``Pop``, ``BPR`` or any other target-only model run). Then the p-values, the paper's numbers next to
  ours where the scenario is one of the paper's, K-shot results, chosen hyperparameters and run times.
* ``differences.png``: per scenario, the paired difference TMCDR_X - baseline with its 95% CI, and the best
  target-only floor's difference to the same baseline.
* ``figure1.png``: EMCDR_X vs TMCDR_X (SSCDR vs TMCDR_CML) per scenario, X in MF, BPR, ListRankMF, CML, with
  95% CI error bars (the paper's Figure 1).
* ``kshot.png``: metric vs K per model, when K-shot results exist.
"""

import argparse
import csv
import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from recbole_tmcdr.benchmark import paper
from recbole_tmcdr.benchmark.stats import (  # noqa: F401 - Summary/summarize are part of this module's API
    ALPHA, MIN_PAIRS, PairedTest, Summary, adjust_family, finite as _finite, fmt_p as _fmt_p, paired_test, summarize,
)
from recbole_tmcdr.benchmark.results import RESULTS_FILE, latest_records, load_records, run_key

METRICS = (('AUC', 'uauc'), ('NDCG@10', 'ndcg@10'))
# Target-only floors the issue asks every table to show: popularity and the mean warm user. Any other
# target-only model that was run (e.g. LightGCN) is a floor too (see is_target_only).
FLOOR_MODELS = ('TargetPop', 'Pop', 'BPR')
TESTED_PREFIX = 'TMCDR'
BASE_MODELS = ('MF', 'BPR', 'ListRankMF', 'CML')
# (baseline, TMCDR model) pairs the paper compares: EMCDR_X vs TMCDR_X, and SSCDR vs TMCDR_CML (its Figure 1).
COMPARED_PAIRS = tuple((f'EMCDR_{base}', f'TMCDR_{base}') for base in BASE_MODELS) + (('SSCDR', 'TMCDR_CML'),)
# Target-only models of the plugin (no transfer), if the registry cannot be asked.
_TARGET_ONLY_FALLBACK = frozenset({'TargetPop', 'Pop', 'BPR', 'ItemKNN', 'EASE', 'LightGCN', 'NeuMF', 'MultiVAE',
                                   'NGCF'})


def is_target_only(model):
    """True for a model that uses no source data (the floors and RecBole's general models)."""
    if model in FLOOR_MODELS:
        return True
    try:
        from recbole_tmcdr.registry import MODELS
        if model in MODELS:
            return MODELS.get(model).__name__ in ('TargetPop', 'RecBoleGeneralAdapter')
    except Exception:  # noqa: BLE001
        pass
    return model in _TARGET_ONLY_FALLBACK


# ----- aggregation
@dataclass
class Aggregate:
    records: list
    scenarios: list
    models: list                                    # floors first, then in order of first appearance
    cells: dict                                     # (scenario, model) -> {metric: Summary}
    kshot: dict                                     # (scenario, model) -> {K: {metric: Summary}}
    tests: dict                                     # (scenario, model) -> {'baseline', metric: PairedTest}
    baselines: dict                                 # scenario -> baseline model of the tests (or None)
    floor_tests: dict                               # scenario -> [(model, auc, floor, floor_auc, one-sided test)]
                                                    # of every transfer model against the best floor
    floors: dict                                    # scenario -> [(floor model, mean auc)]
    comparisons: list = field(default_factory=list)  # PairComparison of COMPARED_PAIRS
    stale: list = field(default_factory=list)        # (scenario, model, seed) left out: inputs changed since
    stale_checked: bool = False                      # whether the runs' inputs were compared with the current ones
    outside_spec: int = 0                            # finished runs left out because the spec no longer plans them

    def summary(self, scenario, model, metric):
        return self.cells.get((scenario, model), {}).get(metric)

    def models_in(self, scenario):
        return [m for m in self.models if (scenario, m) in self.cells]

    def test(self, scenario, model, metric):
        return self.tests.get((scenario, model), {}).get(metric)

    def starred(self, scenario, model, metric):
        test = self.test(scenario, model, metric)
        return bool(test and test.significant)

    def significantly_worse(self, scenario, model, metric):
        return self.starred(scenario, model, metric) and self.test(scenario, model, metric).diff < 0

    def flagged(self, scenario, model):
        """Negative transfer: a one-sided paired test (Holm-adjusted) says the model is below the best floor."""
        return any(m == model and test.significant for m, *_, test in self.floor_tests.get(scenario, []))


def _ordered(names, order):
    order = [n for i, n in enumerate(order or []) if n not in (order or [])[:i]]
    return [n for n in order if n in names] + [n for n in names if n not in order]


def aggregate(records, metrics=METRICS, scenario_order=None, model_order=None):
    """Statistics of the last record of each (scenario, model, seed). Scenarios and models are listed in the
    given orders (e.g. the spec's), then in order of first appearance; target-only floors come first."""
    records = latest_records(records)
    scenarios, models = [], []
    values = OrderedDict()
    kshot_values = OrderedDict()
    for record in records:
        scenario, model, seed = record['scenario'], record['model'], int(record['seed'])
        if scenario not in scenarios:
            scenarios.append(scenario)
        if model not in models:
            models.append(model)
        cell = values.setdefault((scenario, model), {key: {} for _, key in metrics})
        test = record.get('cold_test') or {}
        for _, key in metrics:
            cell[key][seed] = test.get(key)
        for k, kmetrics in (record.get('kshot') or {}).items():
            if not kmetrics or not kmetrics.get('n_users'):
                continue
            per_k = kshot_values.setdefault((scenario, model), {}).setdefault(int(k), {key: {} for _, key in metrics})
            for _, key in metrics:
                per_k[key][seed] = kmetrics.get(key)
    scenarios, models = _ordered(scenarios, scenario_order), _ordered(models, model_order)
    models = [m for m in models if is_target_only(m)] + [m for m in models if not is_target_only(m)]
    cells = {pair: {key: summarize(by_seed) for key, by_seed in cell.items()} for pair, cell in values.items()}
    kshot = {pair: {k: {key: summarize(v) for key, v in per_metric.items()} for k, per_metric in sorted(ks.items())}
             for pair, ks in kshot_values.items()}

    auc = metrics[0][1]
    tests, baselines, floor_tests, floors = {}, {}, {}, {}
    for scenario in scenarios:
        present = [m for m in models if (scenario, m) in cells and cells[(scenario, m)].get(auc)]
        candidates = [m for m in present if not m.startswith(TESTED_PREFIX)]
        baseline = max(candidates, key=lambda m: cells[(scenario, m)][auc].mean) if candidates else None
        baselines[scenario] = baseline
        for model in present:
            if not model.startswith(TESTED_PREFIX) or baseline is None:
                continue
            entry = {'baseline': baseline}
            for _, key in metrics:
                a, b = cells[(scenario, model)].get(key), cells[(scenario, baseline)].get(key)
                entry[key] = paired_test(a.by_seed, b.by_seed) if a and b else PairedTest(n=0)
            tests[(scenario, model)] = entry
        floors[scenario] = [(m, cells[(scenario, m)][auc].mean) for m in present if is_target_only(m)]
        if floors[scenario]:
            floor, floor_auc = max(floors[scenario], key=lambda item: item[1])
            # every transfer model is tested (the family must not depend on the outcome); the text lists those
            # whose mean is not above the floor
            floor_tests[scenario] = [
                (m, cells[(scenario, m)][auc].mean, floor, floor_auc,
                 paired_test(cells[(scenario, m)][auc].by_seed, cells[(scenario, floor)][auc].by_seed, 'less'))
                for m in present if not is_target_only(m)]
    agg = Aggregate(records=records, scenarios=scenarios, models=models, cells=cells, kshot=kshot, tests=tests,
                    baselines=baselines, floor_tests=floor_tests, floors=floors)
    agg.comparisons = pair_comparisons(agg, metrics)
    # Two families, each Holm-corrected: the TMCDR comparisons (against the best other model and the paper's
    # pairs; a test that is in both counts once) and the negative-transfer tests against the floors.
    family = {}
    for (scenario, model), entry in tests.items():
        for _, key in metrics:
            family[(scenario, model, entry['baseline'], key)] = entry[key]
    for c in agg.comparisons:
        c.test = family.setdefault((c.scenario, c.tmcdr, c.baseline, c.key), c.test)
    adjust_family(family.values())
    adjust_family(entry[-1] for entries in floor_tests.values() for entry in entries)
    return agg


# ----- rendering
def format_summary(summary, digits=4):
    if summary is None:
        return '–'
    text = f'{summary.mean:.{digits}f}'
    if summary.half_width is not None:
        text += f' ± {summary.half_width:.{digits}f}'
    return text


def _fmt(value, spec='+.4f'):
    return '–' if value is None else format(value, spec)


def _table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(['---'] + [':---:'] * (len(header) - 1)) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def _model_label(model):
    return f'{model} (target-only)' if is_target_only(model) else model


def main_table(agg, metrics=METRICS):
    header = ['model'] + [f'{scenario} {name}' for scenario in agg.scenarios for name, _ in metrics]
    best = {}
    for scenario in agg.scenarios:
        for _, key in metrics:
            means = [agg.summary(scenario, m, key).mean for m in agg.models if agg.summary(scenario, m, key)]
            best[(scenario, key)] = max(means) if means else None
    max_n = {s: max((agg.summary(s, m, metrics[0][1]).n for m in agg.models_in(s)
                     if agg.summary(s, m, metrics[0][1])), default=0) for s in agg.scenarios}
    rows = []
    for model in agg.models:
        row = [_model_label(model)]
        for scenario in agg.scenarios:
            for _, key in metrics:
                summary = agg.summary(scenario, model, key)
                cell = format_summary(summary)
                if summary is not None:
                    if best[(scenario, key)] is not None and summary.mean == best[(scenario, key)]:
                        cell = f'**{cell}**'
                    if agg.starred(scenario, model, key):
                        cell += '\\*' + ('↓' if agg.significantly_worse(scenario, model, key) else '')
                    if key == metrics[0][1] and agg.flagged(scenario, model):
                        cell += ' †'
                    if summary.n < max_n[scenario]:
                        cell += f' (n={summary.n})'
                row.append(cell)
        rows.append(row)
    return _table(header, rows)


def _test_cells(test):
    """Effect size with its 95% CI, raw p and Holm-adjusted p of one PairedTest."""
    if test is None:
        return ['–', 'n/a', 'n/a']
    if not test.tested:
        reason = f'n/a (n={test.n})' if test.n < MIN_PAIRS else 'n/a (equal)'
        return [test.ci_text(), reason, reason]
    star = ' \\*' + ('↓' if test.diff < 0 else '') if test.significant else ''
    return [test.ci_text(), _fmt_p(test.p), _fmt_p(test.p_holm) + star]


def tests_table(agg, metrics=METRICS):
    if not agg.tests:
        return None
    header = ['scenario', 'model', 'baseline (best other by AUC)', 'pairs']
    for name, _ in metrics:
        header += [f'Δ{name} [95% CI]', f'p ({name})', f'Holm p ({name})']
    rows = []
    for (scenario, model), entry in agg.tests.items():
        row = [scenario, model, entry['baseline'], entry[metrics[0][1]].n]
        for _, key in metrics:
            row += _test_cells(entry[key])
        rows.append(row)
    return _table(header, rows)


class Verdict:
    """Outcome of a paired t-test of a TMCDR model against its baseline (Holm-adjusted p < ALPHA, two-sided)."""
    BETTER = 'better'
    WORSE = 'worse'
    NOT_SIGNIFICANT = 'not significant'
    UNTESTED = 'n/a'  # fewer than MIN_PAIRS common seeds


@dataclass
class PairComparison:
    """One (scenario, TMCDR_X vs baseline, metric) paired t-test over the seeds both models ran."""
    scenario: str
    tmcdr: str
    baseline: str
    metric: str
    key: str
    tmcdr_mean: float
    baseline_mean: float
    test: PairedTest

    @property
    def n(self):
        return self.test.n

    @property
    def verdict(self):
        if not self.test.tested:
            return Verdict.UNTESTED
        if self.test.significant:
            return Verdict.BETTER if self.test.diff > 0 else Verdict.WORSE
        return Verdict.NOT_SIGNIFICANT

    @property
    def label(self):
        return (f'{self.scenario} {self.metric} ({self.tmcdr_mean:.4f} vs {self.baseline_mean:.4f}, '
                f'Δ {self.test.ci_text()}, Holm p {_fmt_p(self.test.p_holm)})')


def pair_comparisons(agg, metrics=METRICS):
    """Every run pair of ``COMPARED_PAIRS`` on every scenario and metric, as PairComparison rows (their tests are
    Holm-adjusted by :func:`aggregate`)."""
    comparisons = []
    for scenario in agg.scenarios:
        for baseline, tmcdr in COMPARED_PAIRS:
            if (scenario, baseline) not in agg.cells or (scenario, tmcdr) not in agg.cells:
                continue
            for name, key in metrics:
                ours, theirs = agg.summary(scenario, tmcdr, key), agg.summary(scenario, baseline, key)
                if ours is None or theirs is None:
                    continue
                comparisons.append(PairComparison(scenario, tmcdr, baseline, name, key, ours.mean, theirs.mean,
                                                  paired_test(ours.by_seed, theirs.by_seed)))
    return comparisons


def pairs_table(comparisons, metrics=METRICS):
    """``pair_comparisons`` as a table, a row per scenario and pair: TMCDR_X against EMCDR_X for each base model
    X (and TMCDR_CML against SSCDR, the paper's Figure 1 pair), means over seeds, the paired difference with its
    95% CI, raw and Holm-adjusted p; None if no pair was run."""
    by_row = OrderedDict()
    for c in comparisons:
        by_row.setdefault((c.scenario, c.tmcdr, c.baseline), {})[c.metric] = c
    if not by_row:
        return None
    rows = []
    for (scenario, tmcdr, baseline), cells in by_row.items():
        row = [scenario, f'{tmcdr} vs {baseline}', max(c.n for c in cells.values())]
        for name, _ in metrics:
            c = cells.get(name)
            row += (['', '', '', '', ''] if c is None else
                    [f'{c.tmcdr_mean:.4f} vs {c.baseline_mean:.4f}', *_test_cells(c.test), c.verdict])
        rows.append(row)
    header = ['scenario', 'pair', 'seeds']
    for name, _ in metrics:
        header += [name, f'Δ{name} [95% CI]', f'p ({name})', f'Holm p ({name})', f'{name}: TMCDR is']
    return _table(header, rows)


def pairs_summary_text(comparisons):
    """Generated from ``pair_comparisons``, so that a report's prose cannot contradict its table: where TMCDR_X
    is significantly better / worse than its baseline after Holm's correction, and how many were not."""
    if not comparisons:
        return None
    lines = []
    for title, keep in (('TMCDR_X vs EMCDR_X', lambda c: c.baseline.startswith('EMCDR_')),
                        ('TMCDR_CML vs SSCDR', lambda c: c.baseline == 'SSCDR')):
        group = [c for c in comparisons if keep(c)]
        if not group:
            continue
        tested = [c for c in group if c.verdict != Verdict.UNTESTED]
        if lines:
            lines.append('')  # a paragraph break: otherwise Markdown folds this into the list above
        untested = len(group) - len(tested)
        lines.append(f'**{title}**: {len(tested)} tested comparisons (one per scenario, pair and metric)'
                     + (f'; {untested} not tested (fewer than {MIN_PAIRS} common seeds, or no variation).' if untested else '.'))
        for verdict in (Verdict.BETTER, Verdict.WORSE):
            hits = [c for c in tested if c.verdict == verdict]
            listed = '; '.join(f'{c.tmcdr} {c.label}' for c in hits) or 'none'
            lines.append(f'- TMCDR significantly {verdict.upper()}: {len(hits)} ({listed}).')
        quiet = sum(c.verdict == Verdict.NOT_SIGNIFICANT for c in tested)
        lines.append(f'- Not significant: {quiet}.')
    lines += ['', f'Significance is judged on Holm-adjusted p-values (family-wise error {ALPHA}) over the family of '
                 'every TMCDR test in this report: these pairs and the tests against the best other model.']
    return '\n'.join(lines)


def negative_transfer_text(agg):
    lines = []
    for scenario in agg.scenarios:
        if not agg.floors.get(scenario):
            transfer = [m for m in agg.models_in(scenario) if not is_target_only(m)]
            if transfer:
                lines.append(f'- {scenario}: no target-only floor was run ({", ".join(FLOOR_MODELS)}): '
                             'negative transfer not checked; add TargetPop to the models.')
            continue
        floor, floor_auc = max(agg.floors[scenario], key=lambda item: item[1])
        entries = [entry for entry in agg.floor_tests.get(scenario, []) if entry[1] <= floor_auc or entry[-1].significant]
        if not entries:
            lines.append(f'- {scenario}: every transfer model has a mean AUC above the target-only floor {floor} '
                         f'(AUC {floor_auc:.4f}).')
            continue
        for model, auc, _, _, test in entries:
            verdict = ('† negative transfer' if test.significant else 'not above the floor (n.s.)' if test.tested
                       else f'not above the floor (not tested, n={test.n})')
            lines.append(f'- {scenario}: {model} (AUC {auc:.4f}) vs the target-only floor {floor} '
                         f'(AUC {floor_auc:.4f}): {verdict}; Δ {test.ci_text()}, one-sided p {_fmt_p(test.p)}, '
                         f'Holm p {_fmt_p(test.p_holm)}.')
    return '\n'.join(lines)


def paper_section(agg, metrics=METRICS):
    lines = []
    matched = [s for s in agg.scenarios if s in paper.SCENARIO_TO_PAPER]
    for scenario in matched:
        number = paper.SCENARIO_TO_PAPER[scenario]
        rows = []
        for model in agg.models_in(scenario):
            if model not in paper.PAPER_TABLE1:
                continue
            row = [model]
            for _, key in metrics:
                theirs, ours = paper.paper_value(model, key, number), agg.summary(scenario, model, key)
                row += ['–' if theirs is None else f'{theirs:.4f}', format_summary(ours),
                        '–' if theirs is None or ours is None else f'{ours.mean - theirs:+.4f}']
            rows.append(row)
        if not rows:
            continue
        header = ['model']
        for name, _ in metrics:
            header += [f'paper {name}', f'ours {name}', 'Δ']
        lines.append(f'**{scenario}** = paper scenario {number} ({paper.PAPER_SCENARIOS[number]}):\n')
        lines.append(_table(header, rows))
        gain = _gain(agg, scenario)
        if gain is not None:
            theirs = paper.paper_value('TMCDR_MF', 'uauc', number) - paper.paper_value('EMCDR_MF', 'uauc', number)
            lines.append(f'\nTMCDR_MF − EMCDR_MF (AUC): paper {theirs:+.4f}, ours {gain:+.4f}.')
        lines.append('')
    low, high = paper.paper_gain_range('uauc')
    note = (f'The paper reports TMCDR_MF above EMCDR_MF on all six of its scenarios, by {low:+.4f} to {high:+.4f} '
            'AUC (Table 1).')
    if not matched:
        lines.append(f'No scenario of this benchmark is one of the paper\'s (paper numbers are known for: '
                     f'{", ".join(sorted(paper.SCENARIO_TO_PAPER))}). {note}')
        for scenario in agg.scenarios:
            gain = _gain(agg, scenario)
            if gain is not None:
                lines.append(f'- {scenario}: ours TMCDR_MF − EMCDR_MF = {gain:+.4f} AUC.')
    else:
        lines.append(note + ' Differences in data preparation and evaluation protocol (e.g. full ranking of all '
                     'target items here) make absolute numbers differ; compare the ordering.')
    return '\n'.join(lines)


def _gain(agg, scenario):
    t, e = agg.summary(scenario, 'TMCDR_MF', 'uauc'), agg.summary(scenario, 'EMCDR_MF', 'uauc')
    return None if t is None or e is None else t.mean - e.mean


def kshot_section(agg, metrics=METRICS):
    if not agg.kshot:
        return None
    parts = []
    for scenario in agg.scenarios:
        models = [m for m in agg.models if (scenario, m) in agg.kshot]
        if not models:
            continue
        ks = sorted({k for m in models for k in agg.kshot[(scenario, m)]})
        header = ['model'] + [f'K={k}' for k in ks]
        rows = []
        for model in models:
            row = [_model_label(model)]
            for k in ks:
                per_metric = agg.kshot[(scenario, model)].get(k, {})
                row.append(' / '.join(format_summary(per_metric.get(key), 3) for _, key in metrics))
            rows.append(row)
        parts.append(f'**{scenario}** ({" / ".join(name for name, _ in metrics)}, cold test users with at least '
                     'K+1 target interactions; the first K are revealed):\n\n' + _table(header, rows))
    return '\n\n'.join(parts)


def hyperparameter_section(agg):
    rows = []
    for record in sorted(agg.records, key=lambda r: (agg.scenarios.index(r['scenario']),
                                                     agg.models.index(r['model']), int(r['seed']))):
        chosen = record.get('chosen') or {}
        if len(record.get('trials') or []) <= 1:  # nothing was searched: the defaults are not a selection
            continue
        trials = record.get('trials') or []
        scores = ', '.join('–' if t.get('valid_score') is None else f"{t['valid_score']:.4f}" for t in trials)
        rows.append([record['scenario'], record['model'], record['seed'],
                     ', '.join(f'{k}={v}' for k, v in chosen.items()) or '(defaults)',
                     f"{record.get('valid_metric', 'valid')}: {scores}"])
    if not rows:
        return None
    return _table(['scenario', 'model', 'seed', 'chosen (on cold validation)', 'validation score per trial'], rows)


def training_section(agg):
    """The bridge stage of each model with one (mapping / meta network): best validated epoch, epochs run and
    optimizer (for TMCDR: outer) steps, mean over seeds, and how many seeds stopped on patience."""
    rows = []
    for scenario in agg.scenarios:
        for model in agg.models_in(scenario):
            runs = [r.get('training') for r in agg.records if r['scenario'] == scenario and r['model'] == model]
            runs = [t for t in runs if isinstance(t, dict) and t.get('best_epoch') is not None
                    and t.get('epochs_run') is not None and t.get('steps') is not None]
            if not runs:
                continue
            ratios = [h.get('inner_step_ratio') for t in runs for h in t.get('history') or []
                      if h.get('epoch') == t['best_epoch'] and h.get('inner_step_ratio') is not None]
            rows.append([scenario, model, len(runs), f"{np.mean([t['best_epoch'] for t in runs]):.0f}"
                         + ''.join(sorted({f" ({t['best_stage']})" for t in runs if t.get('best_stage') == 'warm_start'})),
                         f"{np.mean([t['epochs_run'] for t in runs]):.0f}",
                         f"{np.mean([t['steps_at_best'] or 0 for t in runs]):.0f} / {np.mean([t['steps'] for t in runs]):.0f}",
                         sum(bool(t.get('stopped_on_patience')) for t in runs),
                         f'{np.mean(ratios):.4f}' if ratios else '–'])
    if not rows:
        return None
    return _table(['scenario', 'model', 'seeds', 'best epoch', 'epochs run', 'steps at best / run',
                   'stopped on patience', 'inner-step ratio at best'], rows)


def _phase_cost(runs):
    """Mean seconds per run spent pre-training and in the other phases (over all trials), and how many runs
    reused every pre-training from the cache (their cost then excludes it)."""
    pretrain, other, reused, known = [], [], 0, 0
    for record in runs:
        phases = [t.get('phases') for t in record.get('trials') or [] if isinstance(t.get('phases'), dict)]
        if not phases:
            continue
        known += 1
        pretrain.append(sum(p.get('seconds', 0) for ph in phases for name, p in ph.items() if 'reused' in p))
        other.append(sum(p.get('seconds', 0) for ph in phases for name, p in ph.items() if 'reused' not in p))
        first = [p for p in phases[0].values() if 'reused' in p]
        reused += bool(first) and all(p['reused'] for p in first)
    if not known:
        return '–', '–', '–'
    return f'{np.mean(pretrain):.0f}', f'{np.mean(other):.0f}', f'{reused} of {known}'


def cost_section(agg):
    rows = []
    for scenario in agg.scenarios:
        for model in agg.models_in(scenario):
            runs = [r for r in agg.records if r['scenario'] == scenario and r['model'] == model]
            totals = [r.get('timings', {}).get('total') for r in runs if _finite(r.get('timings', {}).get('total'))]
            n_trials = [len(r.get('trials') or []) for r in runs]
            if totals:
                rows.append([scenario, model, len(runs), max(n_trials) if n_trials else 0,
                             f'{np.mean(totals):.0f}', *_phase_cost(runs)])
    if not rows:
        return None
    return _table(['scenario', 'model', 'seeds', 'trials per run', 'mean seconds per run', 'of which pre-training',
                   'other phases', 'runs that reused the cached pre-training'], rows)


def _counted(n, noun):
    return f'{n} {noun}' + ('' if n == 1 else 's')


def coverage_text(agg, spec):
    """Planned (the spec's scenarios x models x seeds) against finished runs; None without a spec."""
    scenarios, models, seeds = (spec.get(k) or [] for k in ('scenario_labels', 'models', 'seeds'))
    planned = [(sc, m, int(seed)) for sc in scenarios for m in models for seed in seeds]
    if not planned:
        return None
    finished = {(r['scenario'], r['model'], int(r['seed'])) for r in agg.records}
    missing = [run for run in planned if run not in finished]
    lines = [f'{len(planned) - len(missing)} of {len(planned)} planned runs ({_counted(len(scenarios), "scenario")} x '
             f'{_counted(len(models), "model")} x {_counted(len(seeds), "seed")}) are finished.']
    if not agg.stale_checked:
        lines.append('The runs\' inputs were not compared with the current ones (report made from results.jsonl '
                     'alone): `python -m recbole_tmcdr.benchmark --spec SPEC --report-only` leaves out stale runs.')
    if agg.outside_spec:
        lines.append(f'{_counted(agg.outside_spec, "finished run")} outside this spec (other scenarios, models or '
                     'seeds) are not shown.')
    stale = [run for run in missing if run in set(agg.stale)]
    if stale:
        lines.append(f'Stale, left out of every table: {_counted(len(stale), "run")} whose result was made from other '
                     'inputs (a model YAML, the raw data, the code or the spec) than the current ones.')
    if missing:
        lines.append('Missing (the command above runs exactly these and keeps the rest):')
        seeds_by_model_by_scenario = OrderedDict()  # in plan order: scenarios, then models
        for scenario, model, seed in missing:
            seeds_by_model_by_scenario.setdefault(scenario, OrderedDict()).setdefault(model, []).append(seed)
        all_seeds = sorted(int(s) for s in seeds)
        for scenario, by_model in seeds_by_model_by_scenario.items():
            parts = [model if sorted(ss) == all_seeds
                     else f'{model} ({"seed" if len(ss) == 1 else "seeds"} {", ".join(map(str, ss))})'
                     for model, ss in by_model.items()]
            lines.append(f'- {scenario}: {", ".join(parts)}')
    return '\n'.join(lines)


def header_notes(agg):
    seeds = sorted({int(r['seed']) for r in agg.records})
    valid_metrics = sorted({str(r.get('valid_metric', '?')) for r in agg.records})
    overrides = {repr(sorted((r.get('overrides') or {}).items())) for r in agg.records}
    versions = sorted({str(r.get('code_version')) for r in agg.records if r.get('code_version')})
    hosts = sorted({f"{r['host'].get('hostname')} ({r['host'].get('cpu_count')} CPUs, torch {r['host'].get('torch')})"
                    for r in agg.records if isinstance(r.get('host'), dict)})
    lr_search = sorted({bool(r.get('lr_search')) for r in agg.records})
    lines = [f'{len(agg.records)} runs; seeds {seeds}; hyperparameters '
             + ('searched' if lr_search == [True] else 'NOT searched (defaults)' if lr_search == [False]
                else 'searched for some runs only')
             + f' on the cold VALIDATION users ({", ".join(valid_metrics)}); metrics below are on the cold TEST users.']
    if len(overrides) > 1:
        lines.append('**Warning**: the runs were made with different overrides; compare with care.')
    if versions:
        lines.append(f'Code: {", ".join(versions)}. Hosts: {", ".join(hosts)}.')
    return '\n'.join(lines)


DEFAULT_TITLE = 'Cold-start cross-domain benchmark'


def render_markdown(agg, figures=None, spec=None):
    """The report; ``spec`` (the out dir's spec.yaml) gives its title, notes and the command that made it."""
    figures, spec = figures or {}, spec or {}
    parts = [f"# {spec.get('title') or DEFAULT_TITLE}", '']
    if spec.get('command'):
        parts += ['Made (or resumed to completion) by:', '', '```bash', spec['command'], '```', '']
    if spec.get('notes'):
        parts += [str(spec['notes']).strip(), '']
    coverage = coverage_text(agg, spec)
    if coverage:
        parts += [coverage, '']
    parts += [header_notes(agg), '',
             '## Cold test users: AUC and NDCG@10 (mean ± 95% CI over seeds)', '', main_table(agg), '',
             'AUC = per-user AUC averaged over users (`uauc`). Bold: best mean of the column. '
             f'\\*: paired t-test over seeds (two-sided, at least {MIN_PAIRS} seeds) of a TMCDR model against the '
             f'best other model of the scenario, Holm-adjusted p < {ALPHA}; \\*↓: significantly WORSE than that '
             'model. †: negative transfer (a one-sided paired test, Holm-adjusted, finds the AUC below the best '
             'target-only floor). "(target-only)": a floor that uses no source data.', '']
    tests = tests_table(agg)
    parts += ['## Paired t-tests (TMCDR vs the best other model, by mean test AUC)', '',
              tests if tests else 'No TMCDR model with a non-TMCDR baseline in the results.', '']
    comparisons = agg.comparisons
    if comparisons:
        parts += [f'## TMCDR_X vs EMCDR_X (paired t-test over seeds, Holm-adjusted p < {ALPHA})', '',
                  pairs_summary_text(comparisons), '', pairs_table(comparisons), '']
    parts += ['## Negative transfer', '', negative_transfer_text(agg) or 'No scenario.', '']
    parts += ['## Comparison with the paper (Table 1)', '', paper_section(agg), '']
    kshot = kshot_section(agg)
    if kshot:
        parts += ['## K-shot (mean over seeds)', '', kshot, '']
    hyper = hyperparameter_section(agg)
    if hyper:
        parts += ['## Selected hyperparameters', '', hyper, '']
    training = training_section(agg)
    if training:
        parts += ['## Bridge stage (mean over seeds)', '',
                  'The validated stage of each mapping / meta model: best epoch on the cold validation users, epochs '
                  'and optimizer steps run (TMCDR: outer steps), and for TMCDR the inner-step ratio '
                  '||lambda grad L_a|| / ||theta|| at the best epoch.', '', training, '']
    cost = cost_section(agg)
    if cost:
        parts += ['## Cost', '', cost, '']
    figure_lines = [f'![{name}]({os.path.basename(path)})' for name, path in figures.items() if path]
    if figure_lines:
        parts += ['## Figures', '', *figure_lines, '']
    return '\n'.join(parts)


def write_csv(agg, path, metrics=METRICS):
    header = ['model', 'target_only']
    for scenario in agg.scenarios:
        for name, key in metrics:
            header += [f'{scenario}/{key}/mean', f'{scenario}/{key}/ci95', f'{scenario}/{key}/n',
                       f'{scenario}/{key}/diff_vs_baseline', f'{scenario}/{key}/p_vs_baseline',
                       f'{scenario}/{key}/p_holm_vs_baseline']
        header += [f'{scenario}/negative_transfer']
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for model in agg.models:
            row = [model, int(is_target_only(model))]
            for scenario in agg.scenarios:
                for _, key in metrics:
                    s = agg.summary(scenario, model, key)
                    test = agg.test(scenario, model, key)
                    row += ['' if s is None else f'{s.mean:.6f}',
                            '' if s is None or s.half_width is None else f'{s.half_width:.6f}',
                            '' if s is None else s.n]
                    values = (None, None, None) if test is None else (test.diff, test.p, test.p_holm)
                    row += ['' if value is None else f'{value:.6g}' for value in values]
                row.append(int(agg.flagged(scenario, model)) if (scenario, model) in agg.cells else '')
            writer.writerow(row)


# ----- entry points
def _latest_spec(out_dir):
    """``spec.yaml`` of the latest benchmark invocation in ``out_dir`` ({} if none or unreadable)."""
    try:
        import yaml
        with open(os.path.join(out_dir, 'spec.yaml'), encoding='utf-8') as f:
            spec = yaml.safe_load(f) or {}
        return spec if isinstance(spec, dict) else {}
    except (OSError, ValueError):
        return {}


def write_report(out_dir, records=None, scenario_order=None, model_order=None, stale=None, planned=None):
    """Write table.md, table.csv, figure1.png and kshot.png into ``out_dir``; returns their paths and the
    Markdown text (``{'markdown', 'table_md', 'table_csv', 'figure1', 'kshot', 'aggregate'}``). ``stale``: the
    (scenario, model, seed) whose last record was made from other inputs than the spec's now; they are left out
    of every table and listed in the coverage section (None: not checked, as when the report is made from
    results.jsonl alone). ``planned``: the spec's (scenario, model, seed); other records are left out."""
    if records is None:
        records = load_records(os.path.join(out_dir, RESULTS_FILE))
    checked = stale is not None
    stale = sorted(set(stale or ()))
    outside = 0
    if records and (stale or planned is not None):
        records = latest_records(records)
        kept = [r for r in records if planned is None or run_key(r) in planned]
        outside = len(records) - len(kept)
        records = [r for r in kept if run_key(r) not in set(stale)]
        if not records:
            raise FileNotFoundError(f'Every finished run in {out_dir} is stale (made from other inputs than now): '
                                    'nothing to report; run the benchmark without --report-only to redo them.')
    if not records:
        raise FileNotFoundError(f'No finished run in {os.path.join(out_dir, RESULTS_FILE)}: nothing to report.')
    spec = _latest_spec(out_dir)
    if scenario_order is None and model_order is None:
        scenario_order, model_order = spec.get('scenario_labels') or [], spec.get('models') or []
    agg = aggregate(records, scenario_order=scenario_order, model_order=model_order)
    agg.stale, agg.stale_checked, agg.outside_spec = stale, checked, outside
    from recbole_tmcdr.benchmark.figures import plot_figure1, plot_kshot, plot_pair_differences
    figures = {'TMCDR_X - baseline': plot_pair_differences(agg, os.path.join(out_dir, 'differences.png')),
               'Figure 1': plot_figure1(agg, os.path.join(out_dir, 'figure1.png')),
               'K-shot': plot_kshot(agg, os.path.join(out_dir, 'kshot.png'))}
    markdown = render_markdown(agg, figures, spec)
    paths = {'table_md': os.path.join(out_dir, 'table.md'), 'table_csv': os.path.join(out_dir, 'table.csv')}
    with open(paths['table_md'], 'w', encoding='utf-8') as f:
        f.write(markdown)
    write_csv(agg, paths['table_csv'])
    return {'markdown': markdown, **paths, 'differences': figures['TMCDR_X - baseline'], 'figure1': figures['Figure 1'],
            'kshot': figures['K-shot'],
            'aggregate': agg}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m recbole_tmcdr.benchmark.report',
                                     description='Tables and figures of a benchmark directory (its results.jsonl).')
    parser.add_argument('out', help='benchmark output directory (holding results.jsonl)')
    parser.add_argument('--quiet', action='store_true', help="don't print the Markdown report")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.out)
    except FileNotFoundError as error:
        parser.exit(1, f'{error}\n')
    if not args.quiet:
        print(report['markdown'])
    written = [report[k] for k in ('table_md', 'table_csv', 'differences', 'figure1', 'kshot') if report.get(k)]
    print(f"written: {', '.join(written)}", file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
