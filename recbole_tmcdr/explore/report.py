"""The exploration report: RESULTS.md and one regret figure per scenario, from the run files of an output directory.

Per scenario: the cumulative hits and regret of every (policy, prior) at the report rounds, as mean and 95% CI
over seeds (t-distribution, :func:`recbole_tmcdr.benchmark.stats.summarize`), the computing time per decision,
the settings chosen on the cold validation users, and whether each cross-domain prior lowers the regret of a
policy against the no-transfer prior: the paired difference over seeds with its 95% CI, the raw p and Holm's p
over the scenario's comparisons.
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from recbole_tmcdr.benchmark.stats import adjust_family, fmt_p, paired_test, summarize
from recbole_tmcdr.explore.policies import POLICIES
from recbole_tmcdr.explore.problem import NO_TRANSFER
from recbole_tmcdr.explore.run import REPORT_ONLY_SETTINGS


def comparable(settings):
    return {k: v for k, v in settings.items() if k not in REPORT_ONLY_SETTINGS and k != 'notes'}


def read_runs(out_dir, settings):
    """(runs matching ``settings``, names of the run files made with other settings)."""
    runs, stale = [], []
    for path in sorted((Path(out_dir) / 'runs').glob('*.json')):
        record = json.loads(path.read_text())
        if comparable(record['settings']) == comparable(settings):
            runs.append(record)
        else:
            stale.append(path.name)
    return runs, stale


class Aggregate:
    """The runs of one scenario, indexed by stream ('policy|prior') and seed."""

    def __init__(self, runs):
        self.runs = sorted(runs, key=lambda r: r['seed'])
        self.seeds = [r['seed'] for r in self.runs]
        self.streams = list(self.runs[0]['streams'])

    def values(self, stream, key, round_index):
        return {r['seed']: r['streams'][stream][key][round_index] for r in self.runs if stream in r['streams']}

    def curve(self, stream, key):
        """(mean (T,), CI half-width (T,)) over seeds."""
        rows = np.array([r['streams'][stream][key] for r in self.runs if stream in r['streams']])
        summaries = [summarize(dict(enumerate(rows[:, t]))) for t in range(rows.shape[1])]
        return (np.array([s.mean for s in summaries]), np.array([s.half_width or 0.0 for s in summaries]))

    def oracle(self, round_index):
        return {r['seed']: r['streams'][self.streams[0]]['hits'][round_index]
                + r['streams'][self.streams[0]]['regret'][round_index] for r in self.runs}

    def ms_per_decision(self, stream):
        return {r['seed']: 1000 * r['streams'][stream]['policy_seconds'] / r['streams'][stream]['decisions']
                for r in self.runs}


def fmt(summary, digits=2):
    if summary is None:
        return '–'
    if summary.half_width is None:
        return f'{summary.mean:.{digits}f}'
    return f'{summary.mean:.{digits}f} ± {summary.half_width:.{digits}f}'


def chosen_text(agg, stream):
    chosen = [r['streams'][stream].get('chosen') or {} for r in agg.runs]
    if not any(chosen):
        return ''
    keys = list(chosen[0])
    return '; '.join(f"{key} {'/'.join(f'{c.get(key):g}' for c in chosen)}" for key in keys)


def results_table(agg, report_rounds):
    rounds = [t for t in report_rounds if t <= len(agg.runs[0]['streams'][agg.streams[0]]['hits'])]
    head = ['policy', 'prior'] + [f'hits@{t}' for t in rounds] + [f'regret@{t}' for t in rounds] + [
        'ms / decision', 'chosen on validation (per seed)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * 2 + ':---:|' * (2 * len(rounds) + 1) + '---|']
    oracle = ['oracle', '–'] + [fmt(summarize(agg.oracle(t - 1))) for t in rounds] + ['0'] * len(rounds) + ['', '']
    lines.append('| ' + ' | '.join(oracle) + ' |')
    for stream in agg.streams:
        policy, prior = stream.split('|')
        cells = [policy, prior] + [fmt(summarize(agg.values(stream, 'hits', t - 1))) for t in rounds]
        cells += [fmt(summarize(agg.values(stream, 'regret', t - 1))) for t in rounds]
        cells += [fmt(summarize(agg.ms_per_decision(stream)), 3), chosen_text(agg, stream)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines, rounds


def transfer_tests(agg, rounds):
    """[(policy, model, round, PairedTest of regret: model prior - no-transfer prior)], Holm-adjusted together."""
    tests = []
    for stream in agg.streams:
        policy, prior = stream.split('|')
        baseline = f'{policy}|{NO_TRANSFER}'
        if prior in ('-', NO_TRANSFER) or baseline not in agg.streams:
            continue
        for t in rounds:
            tests.append((policy, prior, t, paired_test(agg.values(stream, 'regret', t - 1),
                                                        agg.values(baseline, 'regret', t - 1))))
    adjust_family([test for *_, test in tests])
    return tests


def verdict(test):
    if test.diff is None:
        return 'no common seed'
    if not test.tested:
        return f'not tested (n={test.n})'
    if test.significant:
        return 'lower regret' if test.diff < 0 else 'HIGHER regret'
    return 'no significant difference'


def transfer_section(agg, rounds):
    tests = transfer_tests(agg, rounds)
    if not tests:
        return ['No cross-domain prior was compared with the no-transfer prior (set no_transfer_prior: True).']
    lines = ['| policy | prior | round | regret: prior − no transfer [95% CI] | p | Holm p | verdict |',
             '|---|---|:---:|:---:|:---:|:---:|---|']
    for policy, model, t, test in tests:
        lines.append(f'| {policy} | {model} | {t} | {test.ci_text(2)} | {fmt_p(test.p)} | {fmt_p(test.p_holm)} | '
                     f'{verdict(test)} |')
    last = max(rounds)
    at_last = [(policy, model, test) for policy, model, t, test in tests if t == last]
    lower = [f'{policy} from {model}' for policy, model, test in at_last if test.significant and test.diff < 0]
    higher = [f'{policy} from {model}' for policy, model, test in at_last if test.significant and test.diff > 0]
    summary = (f'At round {last}, the cross-domain prior lowers the regret significantly (Holm-adjusted p < 0.05) '
               f'for {len(lower)} of {len(at_last)} (policy, model) pairs'
               + (f': {", ".join(lower)}.' if lower else '.'))
    if higher:
        summary += f' It raises it significantly for {", ".join(higher)}.'
    if len(lower) < len(at_last):
        summary += (' For the others the difference is within what the seeds allow (the CI includes 0, or there are '
                    'too few seeds to test): the data do not show that the transfer prior lowers regret there.')
    return lines + ['', summary]


def timing_lines(runs):
    lines = ['| scenario | seed | models | models (s) | simulation incl. validation search (s) | total (s) |',
             '|---|:---:|---|:---:|:---:|:---:|']
    for r in sorted(runs, key=lambda r: (r['scenario'], r['seed'])):
        models = ', '.join(f"{m['model']} ({'trained' if m['trained'] else 'cached'})" for m in r['problem']['models'])
        s = r['seconds']
        lines.append(f"| {r['scenario']} | {r['seed']} | {models} | {s['models']:.0f} | {s['simulation']:.0f} | "
                     f"{s['total']:.0f} |")
    return lines


def scenario_section(label, runs, settings, figure):
    agg = Aggregate(runs)
    problems = [r['problem'] for r in agg.runs]
    lines = [f'## {label}', '',
             f"Seeds {', '.join(map(str, agg.seeds))}. Cold test users per seed: "
             f"{', '.join(str(p['n_users']) for p in problems)}; target items (arms): {problems[0]['n_items']}; "
             f"held-out items per cold test user (mean): {np.mean([p['items_per_user_mean'] for p in problems]):.1f}. "
             f"Rounds: {settings['rounds']}, slate size {settings['slate_size']}. Hits and regret are per cold test "
             'user (cumulative, mean over users), then mean ± 95% CI over seeds.', '']
    table, rounds = results_table(agg, settings['report_rounds'])
    lines += table + ['', f'### Does the cross-domain prior lower regret against the no-transfer prior?', '',
                      'Paired over seeds: the regret of a policy started from the model\'s f(u^s), minus its regret '
                      'started from the mean warm user (negative = the transfer prior helps).', '']
    lines += transfer_section(agg, rounds)
    if figure:
        lines += ['', f'![cumulative regret, {label}]({figure})']
    return lines


def policy_lines(settings):
    lines = ['| policy | what it does |', '|---|---|']
    for name in settings['policies']:
        lines.append(f'| {name} | {POLICIES.get(name).description} |')
    return lines


def write_report(out_dir, settings, runs, stale=(), figures=None, title='Exploration for cold users'):
    """RESULTS.md in ``out_dir`` from ``runs``; ``figures``: scenario -> figure file name."""
    by_scenario = defaultdict(list)
    for record in runs:
        by_scenario[record['scenario']].append(record)
    commands = sorted({r.get('command') for r in runs if r.get('command')})
    lines = [f'# {title}', '']
    if settings.get('notes'):
        lines += [settings['notes'].strip(), '']
    lines += ['Made by ' + ('; '.join(f'`{c}`' for c in commands) if commands else 'the explore command') + '.', '',
              '## Policies', ''] + policy_lines(settings) + ['']
    for label, scenario_runs in by_scenario.items():
        lines += scenario_section(label, scenario_runs, settings, (figures or {}).get(label)) + ['']
    lines += ['## Cost', '', 'Wall time of each (scenario, seed) as recorded when it ran (models: training, or '
              'loading a cached checkpoint; the simulation includes the search on validation users).', '']
    lines += timing_lines(runs)
    if stale:
        lines += ['', f"Left out (made with other settings): {', '.join(stale)}."]
    path = Path(out_dir) / 'RESULTS.md'
    path.write_text('\n'.join(lines) + '\n')
    return path
