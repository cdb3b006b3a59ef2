"""The numbers of a benchmark report, from the last result line of each (scenario, model, seed).

:func:`aggregate` puts the runs in a pandas DataFrame (one row per run, scenarios and models as ordered
categories in report order), summarises each scenario x model x metric over seeds (mean and 95% CI,
:func:`~.stats.summarize`), and makes the paired tests the report draws conclusions from: each ``TMCDR_*`` model
against the best other model of its scenario that is neither TMCDR nor a router, and in the paper's pairs
(:data:`COMPARED_PAIRS`), one Holm family; every transfer model against the best target-only floor (one-sided),
another; TMCDR's variants (:data:`VARIANT_KINDS`) against TMCDR_X and its baselines, a third.
:func:`history_frame`: the bridge stage's per-epoch history of every run; :func:`training_curves`: its validation
score per epoch, mean over seeds.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recbole_tmcdr.benchmark.results import latest_records
from recbole_tmcdr.benchmark.stats import MIN_PAIRS, PairedTest, adjust_family, finite, fmt_p, paired_test, summarize

METRICS = (('AUC', 'uauc'), ('NDCG@10', 'ndcg@10'))
# Target-only floors the issue asks every table to show: popularity and the mean warm user. Any other
# target-only model that was run (e.g. LightGCN) is a floor too (see is_target_only).
FLOOR_MODELS = ('TargetPop', 'Pop', 'BPR')
TESTED_PREFIX = 'TMCDR'
BASE_MODELS = ('MF', 'BPR', 'ListRankMF', 'CML')
# (baseline, TMCDR model) pairs the paper compares: EMCDR_X vs TMCDR_X, and SSCDR vs TMCDR_CML (its Figure 1).
COMPARED_PAIRS = tuple((f'EMCDR_{base}', f'TMCDR_{base}') for base in BASE_MODELS) + (('SSCDR', 'TMCDR_CML'),)
# TMCDR's own variants, by name prefix: TMCDRAdapted_X scores cold users with theta' (beyond the paper) and
# TMCDRPaperStep_X takes the paper's literal inner step (an ablation). Each is compared with TMCDR_X and with
# TMCDR_X's baselines in a Holm family of its own, so that it never stands in for, nor weighs on, the paper's
# comparison.
VARIANT_KINDS = {'TMCDRAdapted': 'beyond the paper', 'TMCDRPaperStep': 'ablation'}
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


def variant_of(model):
    """``TMCDR_X`` for a variant ``TMCDRAdapted_X`` / ``TMCDRPaperStep_X`` (:data:`VARIANT_KINDS`), else None."""
    prefix, _, base = model.partition('_')
    return f'TMCDR_{base}' if prefix in VARIANT_KINDS and base else None


def variant_kind(model):
    """'beyond the paper' / 'ablation' for a TMCDR variant, else None."""
    return VARIANT_KINDS[model.partition('_')[0]] if variant_of(model) else None


@dataclass
class Aggregate:
    records: list
    runs: pd.DataFrame                              # one row per record: scenario, model (ordered categories), seed
    scenarios: list
    models: list                                    # floors first, then in the given order / of first appearance
    cells: dict                                     # (scenario, model) -> {metric: Summary}
    kshot: dict                                     # (scenario, model) -> {K: {metric: Summary}}
    tests: dict = field(default_factory=dict)       # (scenario, model) -> {'baseline', metric: PairedTest}
    baselines: dict = field(default_factory=dict)   # scenario -> baseline model of the tests (or None)
    floor_tests: dict = field(default_factory=dict)  # scenario -> [(model, metric, mean, floor, floor mean,
                                                     # one-sided test)] of every transfer model and metric
    floors: dict = field(default_factory=dict)       # scenario -> [(floor model, mean auc)]
    floor: dict = field(default_factory=dict)        # scenario -> the floor tested against (chosen on validation)
    valid_means: dict = field(default_factory=dict)  # (scenario, model) -> mean cold-VALIDATION AUC over seeds
    family_sizes: dict = field(default_factory=dict)  # 'tmcdr' | 'floor' | 'variants' -> tests with a p-value
    chosen_on_test: set = field(default_factory=set)  # scenarios whose baselines had to be chosen on test AUC
    comparisons: list = field(default_factory=list)  # PairComparison of COMPARED_PAIRS
    variant_comparisons: list = field(default_factory=list)  # PairComparison of each variant with TMCDR_X and its
                                                             # baselines (a Holm family of their own)
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

    def best_floor(self, scenario):
        """(model, mean test AUC) of the target-only floor the scenario's transfer models are tested against."""
        return next((item for item in self.floors.get(scenario, []) if item[0] == self.floor.get(scenario)), None)

    def flagged(self, scenario, model, metric=None):
        """Negative transfer: a one-sided paired test (Holm-adjusted) says the model is below the floor on
        ``metric`` (any metric if None)."""
        return any(m == model and metric in (None, key) and test.significant
                   for m, key, *_, test in self.floor_tests.get(scenario, []))


def _ordered(names, order):
    """``names`` in the given order first (repeats and unknown names of ``order`` ignored), then the rest."""
    return list(dict.fromkeys([n for n in order or [] if n in names] + list(names)))


def _summaries(rows, keys):
    """{(*keys, metric): Summary or None} over seeds of ``rows`` ((*keys, seed, metric, value)), in order of first
    appearance; a non-finite value counts as missing."""
    frame = pd.DataFrame(rows, columns=[*keys, 'seed', 'metric', 'value'])
    grouped = frame.groupby([*keys, 'metric'], sort=False)[['seed', 'value']]
    return {key: summarize(dict(zip(group['seed'].tolist(), group['value'].tolist()))) for key, group in grouped}


def _number(value):
    """A metric value as a float; NaN where it is missing or not a finite number (summarize leaves it out)."""
    return float(value) if finite(value) else np.nan


def _metric_rows(records, metrics):
    """Rows (scenario, model, seed, metric, value) of the cold test users, and (scenario, model, K, seed, metric,
    value) of the K-shot results that evaluated any user."""
    test, kshot = [], []
    for r in records:
        scenario, model, seed = r['scenario'], r['model'], int(r['seed'])
        test += [(scenario, model, seed, key, _number((r.get('cold_test') or {}).get(key))) for _, key in metrics]
        kshot += [(scenario, model, int(k), seed, key, _number(values.get(key)))
                  for k, values in (r.get('kshot') or {}).items() if values and values.get('n_users')
                  for _, key in metrics]
    return test, kshot


def aggregate(records, metrics=METRICS, scenario_order=None, model_order=None):
    """Statistics of the last record of each (scenario, model, seed). Scenarios and models are listed in the
    given orders (e.g. the spec's), then in order of first appearance; target-only floors come first."""
    records = latest_records(records)
    runs = pd.DataFrame({'scenario': [r['scenario'] for r in records], 'model': [r['model'] for r in records],
                         'seed': [int(r['seed']) for r in records], 'record': records})
    scenarios = _ordered(list(runs['scenario'].unique()), scenario_order)
    models = sorted(_ordered(list(runs['model'].unique()), model_order), key=lambda m: not is_target_only(m))
    runs['scenario'] = pd.Categorical(runs['scenario'], categories=scenarios, ordered=True)
    runs['model'] = pd.Categorical(runs['model'], categories=models, ordered=True)
    test_rows, kshot_rows = _metric_rows(records, metrics)
    cells, kshot = {}, {}
    for (scenario, model, key), summary in _summaries(test_rows, ['scenario', 'model']).items():
        cells.setdefault((scenario, model), {})[key] = summary
    for (scenario, model, k, key), summary in _summaries(kshot_rows, ['scenario', 'model', 'k']).items():
        kshot.setdefault((scenario, model), {}).setdefault(k, {})[key] = summary
    kshot = {pair: dict(sorted(per_k.items())) for pair, per_k in kshot.items()}
    agg = Aggregate(records=records, runs=runs, scenarios=scenarios, models=models, cells=cells, kshot=kshot)
    valid_rows = [(r['scenario'], r['model'], _number((r.get('cold_valid') or {}).get(metrics[0][1]))) for r in records]
    agg.valid_means = pd.DataFrame(valid_rows, columns=['scenario', 'model', 'value']).groupby(
        ['scenario', 'model'])['value'].mean().dropna().to_dict()
    for scenario in scenarios:
        _test_scenario(agg, scenario, metrics)
    agg.comparisons = pair_comparisons(agg, metrics)
    # Two families, each Holm-corrected: the TMCDR comparisons (against the best other model and the paper's
    # pairs; a test that is in both counts once) and the negative-transfer tests against the floors.
    family = {(scenario, model, entry['baseline'], key): entry[key]
              for (scenario, model), entry in agg.tests.items() for _, key in metrics}
    for c in agg.comparisons:
        c.test = family.setdefault((c.scenario, c.tmcdr, c.baseline, c.key), c.test)
    agg.variant_comparisons = variant_comparisons(agg, metrics)
    families = {'tmcdr': family.values(), 'floor': [entry[-1] for entries in agg.floor_tests.values() for entry in entries],
                'variants': [c.test for c in agg.variant_comparisons]}
    for name, tests in families.items():
        agg.family_sizes[name] = sum(t.p is not None for t in adjust_family(tests))
    return agg


def _chosen_on_validation(agg, scenario, candidates, means, auc):
    """The candidate with the best mean cold-VALIDATION AUC, among those with at least MIN_PAIRS seeds if any: the
    baseline of a test is chosen the way the runs chose their settings, not on the test users the test compares
    (on test AUC only where a candidate has no validation score: the scenario goes to ``agg.chosen_on_test``)."""
    if not candidates:
        return None
    seeds = {m: agg.summary(scenario, m, auc).n for m in candidates}  # candidates have an AUC summary (``means``)
    enough = [m for m in candidates if seeds[m] >= MIN_PAIRS] or candidates
    if all((scenario, m) in agg.valid_means for m in enough):
        return max(enough, key=lambda m: agg.valid_means[(scenario, m)])
    agg.chosen_on_test.add(scenario)  # results without validation scores: never compare one model's validation
    return max(enough, key=means.get)  # mean with another's test mean


def routers(agg):
    """Models whose runs carry a routing record (what a router chose per K), in report order."""
    routed = {r['model'] for r in agg.records if r.get('routing')}
    return [m for m in agg.models if m in routed]


def _test_scenario(agg, scenario, metrics):
    """The paired tests of one scenario: each TMCDR model (not its variants) against the best other model that is
    neither TMCDR nor a router (on validation), and every transfer model (the family must not depend on the
    outcome) against the best target-only floor (on validation), one-sided."""
    auc = metrics[0][1]
    means = {m: agg.summary(scenario, m, auc).mean for m in agg.models_in(scenario) if agg.summary(scenario, m, auc)}
    # not a router either: it serves one of the single models, TMCDR's own among them
    routed = set(routers(agg))
    others = [m for m in means if not m.startswith(TESTED_PREFIX) and m not in routed]
    baseline = agg.baselines[scenario] = _chosen_on_validation(agg, scenario, others, means, auc)
    for model in means:
        if model.startswith(TESTED_PREFIX) and variant_of(model) is None and baseline is not None:
            entry = agg.tests[(scenario, model)] = {'baseline': baseline}
            for _, key in metrics:
                a, b = agg.summary(scenario, model, key), agg.summary(scenario, baseline, key)
                entry[key] = paired_test(a.by_seed, b.by_seed) if a and b else PairedTest(n=0)
    floors = agg.floors[scenario] = [(m, auc_mean) for m, auc_mean in means.items() if is_target_only(m)]
    if floors:
        floor = agg.floor[scenario] = _chosen_on_validation(agg, scenario, [m for m, _ in floors], means, auc)
        entries = agg.floor_tests[scenario] = []
        for _, key in metrics:
            theirs = agg.summary(scenario, floor, key)
            for m in agg.models_in(scenario):
                ours = agg.summary(scenario, m, key)
                if not is_target_only(m) and ours and theirs:
                    mean, floor_mean = paired_means(ours, theirs)  # over the seeds the one-sided test pairs
                    entries.append((m, key, mean, floor, floor_mean, paired_test(ours.by_seed, theirs.by_seed, 'less')))


def cell_frame(agg, metrics=METRICS):
    """One row per (scenario, model, metric) run: its Summary over seeds (None: no finite value), mean and n,
    its paired test against the scenario's baseline (None: not tested) and the negative-transfer flag."""
    rows = [{'scenario': scenario, 'model': model, 'metric': key, 'summary': cell.get(key),
             'test': agg.test(scenario, model, key), 'flagged': agg.flagged(scenario, model, key)}
            for (scenario, model), cell in agg.cells.items() for _, key in metrics]
    frame = pd.DataFrame(rows)
    frame['mean'] = [np.nan if s is None else s.mean for s in frame['summary']]
    frame['n'] = [np.nan if s is None else s.n for s in frame['summary']]
    return frame


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
                f'Δ {self.test.ci_text()}, Holm p {fmt_p(self.test.p_holm)})')


def paired_means(a, b):
    """The means of Summaries ``a`` and ``b`` over their common seeds, those of a paired Δ beside them (their own
    means when they share no seed)."""
    common = sorted(set(a.by_seed) & set(b.by_seed))
    return tuple(float(np.mean([s.by_seed[seed] for seed in common])) if common else s.mean for s in (a, b))


def _compared(agg, scenario, model, baseline, metrics):
    """PairComparison rows of ``model`` against ``baseline`` on ``scenario``, a row per metric both have."""
    rows = []
    for name, key in metrics:
        ours, theirs = agg.summary(scenario, model, key), agg.summary(scenario, baseline, key)
        if ours is not None and theirs is not None:
            rows.append(PairComparison(scenario, model, baseline, name, key, *paired_means(ours, theirs),
                                       paired_test(ours.by_seed, theirs.by_seed)))
    return rows


def pair_comparisons(agg, metrics=METRICS):
    """Every run pair of ``COMPARED_PAIRS`` on every scenario and metric, as PairComparison rows (their tests are
    Holm-adjusted by :func:`aggregate`)."""
    return [c for scenario in agg.scenarios for baseline, tmcdr in COMPARED_PAIRS
            for c in _compared(agg, scenario, tmcdr, baseline, metrics)]


def variant_comparisons(agg, metrics=METRICS):
    """Each TMCDR variant that was run against its TMCDR_X, then against TMCDR_X's baselines in ``COMPARED_PAIRS``
    (EMCDR_X; SSCDR for CML), per scenario and metric (Holm-adjusted as one family by :func:`aggregate`)."""
    rows = []
    for scenario in agg.scenarios:
        for model in agg.models_in(scenario):
            reference = variant_of(model)
            if reference is None:
                continue
            for other in [reference] + [baseline for baseline, tmcdr in COMPARED_PAIRS if tmcdr == reference]:
                rows += _compared(agg, scenario, model, other, metrics)
    return rows


HISTORY_COLUMNS = ('scenario', 'model', 'seed', 'valid_metric', 'stage', 'epoch', 'position', 'loss', 'valid_score',
                   'inner_step_ratio')


def history_frame(agg):
    """One row per validated epoch of the bridge stage of every run (its record's ``training.history``): the
    run, its ``valid_metric``, the entry's stage, epoch, training loss, validation score and (TMCDR) inner-step
    ratio, and ``position``: the epoch counted over the run's stages laid end to end (TMCDR's warm start, then its
    meta stage, whose epochs count from 0 again)."""
    rows = []
    for record in agg.records:
        training = record.get('training') if isinstance(record.get('training'), dict) else {}
        offset, stage, last_epoch = 0, None, -1
        for entry in training.get('history') or []:
            if stage is not None and entry.get('stage', 'bridge') != stage:
                offset += last_epoch + 1
            stage, last_epoch = entry.get('stage', 'bridge'), entry.get('epoch', 0)
            rows.append({**entry, 'scenario': record['scenario'], 'model': record['model'],
                         'seed': int(record['seed']), 'valid_metric': str(record.get('valid_metric', 'valid')),
                         'stage': stage, 'position': offset + last_epoch})
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    frame['scenario'] = pd.Categorical(frame['scenario'], categories=agg.scenarios, ordered=True)
    frame['model'] = pd.Categorical(frame['model'], categories=agg.models, ordered=True)
    return frame


def training_curves(agg):
    """The validation score per epoch (``position`` of :func:`history_frame`) of each scenario's models, mean over
    the seeds that trained that epoch (``seeds`` of the ``of`` seeds that ran the model): indexed by scenario,
    model and position, in report order."""
    history = history_frame(agg).dropna(subset=['valid_score'])
    curves = history.groupby(['scenario', 'model', 'position'], observed=True).agg(
        mean=('valid_score', 'mean'), seeds=('seed', 'nunique'))
    return curves.join(history.groupby(['scenario', 'model'], observed=True)['seed'].nunique().rename('of'))
