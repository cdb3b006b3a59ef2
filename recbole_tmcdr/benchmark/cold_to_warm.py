"""The cold-to-warm section of a benchmark report, from the runs' K-shot results on the cold TEST users.

Per scenario and K (target interactions a cold test user revealed): the single method that leads on the test users
(mean over seeds) and its lead over the runner-up; what a router (a model whose runs carry ``routing``, e.g.
KRouter) served at that K (its choice on the cold VALIDATION users, counted over seeds), how many of its users fell
back to popularity, and its margin over the best single method, i.e. whether the router's curve is at or above every
single method's. Differences are paired over seeds (t-test, 95% CI, :func:`~.stats.paired_test`); the p-values are
Holm-adjusted over one family: every test of this section (leads and margins, all scenarios, K and metrics).
"""

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from recbole_tmcdr.benchmark.aggregate import routers
from recbole_tmcdr.benchmark.sections import markdown_table
from recbole_tmcdr.benchmark.stats import ALPHA, MIN_PAIRS, PairedTest, adjust_family, fmt_p, paired_test

CTW_METRICS = (('NDCG@10', 'ndcg@10'), ('AUC', 'uauc'))


def scenario_ks(agg, scenario):
    return sorted({k for (s, _), per_k in agg.kshot.items() if s == scenario for k in per_k})


def _cell(agg, scenario, model, k, key):
    return agg.kshot.get((scenario, model), {}).get(k, {}).get(key)


@dataclass
class Lead:
    """The best single method at (scenario, K, metric) on the test users, and its paired lead over the runner-up."""
    scenario: str
    k: int
    metric: str
    leader: str
    leader_mean: float
    runner_up: str = None
    test: PairedTest = None


@dataclass
class Margin:
    """A router minus the best single method at (scenario, K, metric), paired over seeds."""
    scenario: str
    k: int
    metric: str
    router: str
    best: str
    router_mean: float
    test: PairedTest


def comparisons(agg, metrics=CTW_METRICS):
    """``(leads, margins)`` of every scenario, K and metric with K-shot results; one Holm family."""
    routed = routers(agg)
    leads, margins = [], []
    for scenario in agg.scenarios:
        singles = [m for m in agg.models if m not in routed and (scenario, m) in agg.kshot]
        for k in scenario_ks(agg, scenario):
            for name, key in metrics:
                cells = {m: c for m in singles if (c := _cell(agg, scenario, m, k, key)) is not None}
                if not cells:
                    continue
                leader, *rest = sorted(cells, key=lambda m: -cells[m].mean)
                lead = Lead(scenario, k, name, leader, cells[leader].mean)
                if rest:
                    lead.runner_up = rest[0]
                    lead.test = paired_test(cells[leader].by_seed, cells[rest[0]].by_seed)
                leads.append(lead)
                for router in routed:
                    cell = _cell(agg, scenario, router, k, key)
                    if cell is not None:
                        margins.append(Margin(scenario, k, name, router, leader, cell.mean,
                                              paired_test(cell.by_seed, cells[leader].by_seed)))
    adjust_family([lead.test for lead in leads if lead.test] + [margin.test for margin in margins])
    return leads, margins


def router_choices(agg, scenario, router, k):
    """Counter of the candidate the router served at K over its seeds (its choice per K on validation; a K it had no
    choice for takes the choice of the largest K below)."""
    from recbole_tmcdr.model.foldin import value_at_k
    counts = Counter()
    for record in agg.records:
        choice = (record.get('routing') or {}).get('choice') if (record['scenario'], record['model']) == (
            scenario, router) else None
        if choice:
            counts[value_at_k({int(key): value for key, value in choice.items()}, k)] += 1
    return counts


def fallback_count(agg, scenario, router, k):
    """(users served popularity, users evaluated), summed over the router's seeds at K; None without counts."""
    per_seed = [(record.get('kshot') or {}).get(str(k)) or {} for record in agg.records
                if (record['scenario'], record['model']) == (scenario, router)]
    counted = [entry for entry in per_seed if 'n_fallback' in entry]
    return (sum(e['n_fallback'] for e in counted), sum(e.get('n_users', 0) for e in counted)) if counted else None


def _significance(test):
    if test is None or not test.tested:
        return 'n/a' if test is None else f'n/a (n={test.n})' if test.n < MIN_PAIRS else 'n/a (equal)'
    return f'Holm p {fmt_p(test.p_holm)}' + (' \\*' if test.significant else '')


def _lead_cell(lead):
    if lead is None:
        return '–'
    if lead.test is None:
        return f'{lead.leader} {lead.leader_mean:.4f} (alone)'
    return (f'{lead.leader} {lead.leader_mean:.4f}; vs {lead.runner_up} Δ {lead.test.ci_text()}, '
            f'{_significance(lead.test)}')


def _margin_cell(margin):
    if margin is None:
        return '–'
    return f'{margin.test.ci_text()} (vs {margin.best}), {_significance(margin.test)}'


def _verdict(margins, metric):
    """Whether the router's mean is at or above the best single method at every K (and where it is not)."""
    below = [m for m in margins if m.metric == metric and m.test.diff is not None and m.test.diff < 0]
    if not below:
        return f'on {metric} at or above every single method at every K'
    where = '; '.join(f'K={m.k} ({m.best}, Δ {m.test.ci_text()}, '
                      f'{"significant" if m.test.significant else "not significant"})' for m in below)
    return f'on {metric} below the best single method at {where}'


def cold_to_warm_section(agg, metrics=CTW_METRICS):
    """Per scenario a paragraph (leaders by K, the router's verdict) and a table with a row per K; None without
    K-shot results."""
    if not agg.kshot:
        return None
    leads, margins = comparisons(agg, metrics)
    routed = routers(agg)
    parts = []
    for scenario in agg.scenarios:
        ks = scenario_ks(agg, scenario)
        if not ks:
            continue
        by_key = {(lead.k, lead.metric): lead for lead in leads if lead.scenario == scenario}
        rows = []
        for k in ks:
            row = {'K': k, **{f'leader {name} (test)': _lead_cell(by_key.get((k, name))) for name, _ in metrics}}
            for router in routed:
                counts = router_choices(agg, scenario, router, k)
                row[f'{router} serves (seeds)'] = ', '.join(f'{m} ({n}/{sum(counts.values())})'
                                                           for m, n in counts.most_common()) or '–'
                fallback = fallback_count(agg, scenario, router, k)
                row[f'{router}: users on popularity'] = '–' if fallback is None else f'{fallback[0]} of {fallback[1]}'
                for name, _ in metrics:
                    margin = next((m for m in margins if (m.scenario, m.k, m.metric, m.router) == (
                        scenario, k, name, router)), None)
                    row[f'{router} − best single, {name}'] = _margin_cell(margin)
            rows.append(row)
        seeds = agg.runs.loc[agg.runs['scenario'] == scenario, 'seed'].nunique()
        leaders = '; '.join(f'{name}: ' + ', '.join(f'K={k} {by_key[(k, name)].leader}' for k in ks
                                                    if (k, name) in by_key) for name, _ in metrics)
        text = [f'**{scenario}** ({seeds} seed{"s" if seeds != 1 else ""}). Leader on the test users by K, {leaders}.']
        scenario_margins = [m for m in margins if m.scenario == scenario]
        for router in routed:
            own = [m for m in scenario_margins if m.router == router]
            if own:
                text.append(f'{router}: ' + '; '.join(_verdict(own, name) for name, _ in metrics) + '.')
        parts.append(' '.join(text) + '\n\n' + markdown_table(pd.DataFrame(rows).astype(str)))
    if not parts:
        return None
    parts.append('Leader: the single method (not a router) with the best mean over seeds at that K; Δ: leader − '
                 'runner-up, paired over seeds, with its 95% CI. The two are ranked on these same test users, so '
                 'the test of their Δ favours a difference: read it as descriptive. A router serves, per K, the '
                 'candidate it chose on the cold VALIDATION users (seeds that chose it / seeds); its margin is '
                 f'router − leader, paired over seeds. Holm p: adjusted over every test of this section; \\*: < {ALPHA}.')
    return '\n\n'.join(parts)
