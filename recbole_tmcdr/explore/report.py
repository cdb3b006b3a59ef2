"""The exploration report: RESULTS.md and one regret figure per scenario, from the run files of an output directory.

Per scenario: the cumulative hits and regret of every (policy, prior) at the report rounds, as mean and 95% CI
over seeds (t-distribution, :func:`recbole_tmcdr.benchmark.stats.summarize`), the computing time per decision,
the settings chosen on the cold validation users, and two paired comparisons of the regret over seeds (the
difference with its 95% CI, the raw p and Holm's p over the comparisons of one table): each cross-domain prior
against the no-transfer prior, and each learning policy against its prior's own ranking.
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from recbole_tmcdr.benchmark.stats import adjust_family, fmt_p, paired_test, summarize
from recbole_tmcdr.explore.policies import POLICIES
from recbole_tmcdr.explore.problem import NO_TRANSFER
from recbole_tmcdr.explore.run import result_settings


def read_runs(out_dir, settings):
    """(runs matching ``settings``, names of the run files made with other settings)."""
    runs, stale = [], []
    for path in sorted((Path(out_dir) / 'runs').glob('*.json')):
        record = json.loads(path.read_text())
        if result_settings(record['settings']) == result_settings(settings):
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
    return '; '.join(f"{key} {'/'.join(fmt_value(c.get(key)) for c in chosen)}" for key in keys)


def fmt_value(value):
    return f'{value:g}' if isinstance(value, (int, float)) else str(value)


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
        cells += [f'{np.mean(list(agg.ms_per_decision(stream).values())):.3f}', chosen_text(agg, stream)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines, rounds


def transfer_pairs(agg):
    """(policy, prior, stream, baseline): each policy from a model's f(u^s) against it from the mean warm user."""
    pairs = []
    for stream in agg.streams:
        policy, prior = stream.split('|')
        baseline = f'{policy}|{NO_TRANSFER}'
        if prior not in ('-', NO_TRANSFER) and baseline in agg.streams:
            pairs.append((policy, prior, stream, baseline))
    return pairs


def learning_pairs(agg):
    """(policy, prior, stream, baseline): each learning policy against the prior's own ranking (static)."""
    pairs = []
    for stream in agg.streams:
        policy, prior = stream.split('|')
        baseline = f'static|{prior}'
        if policy != 'static' and baseline in agg.streams:
            pairs.append((policy, prior, stream, baseline))
    return pairs


def paired_regret_tests(agg, pairs, rounds):
    """[(policy, prior, round, PairedTest of regret: stream - baseline)], Holm-adjusted as one family."""
    tests = [(policy, prior, t, paired_test(agg.values(stream, 'regret', t - 1), agg.values(baseline, 'regret', t - 1)))
             for policy, prior, stream, baseline in pairs for t in rounds]
    adjust_family([test for *_, test in tests])
    return tests


def verdict(test, lower='lower regret', higher='HIGHER regret'):
    if test.diff is None:
        return 'no common seed'
    if not test.tested:
        return f'not tested (n={test.n})'
    if test.significant:
        return lower if test.diff < 0 else higher
    if test.ci_high < 0 or test.ci_low > 0:
        return f"{lower.split()[0] if test.diff < 0 else higher.split()[0]} (CI excludes 0), n.s. after Holm"
    return 'no difference shown (CI includes 0)'


def comparison_section(tests, baseline_name, subject):
    """The table of ``tests`` and one paragraph on the last round."""
    lines = [f'| policy | prior | round | regret − regret {baseline_name} [95% CI] | p | Holm p | verdict |',
             '|---|---|:---:|:---:|:---:|:---:|---|']
    for policy, prior, t, test in tests:
        lines.append(f'| {policy} | {prior} | {t} | {test.ci_text(2)} | {fmt_p(test.p)} | {fmt_p(test.p_holm)} | '
                     f'{verdict(test)} |')
    last = max(t for _, _, t, _ in tests)
    at_last = [(f'{policy} from {prior}', test) for policy, prior, t, test in tests if t == last]
    significant = [name for name, test in at_last if test.significant and test.diff < 0]
    below = [name for name, test in at_last if test.tested and test.ci_high < 0]
    worse = [name for name, test in at_last if test.tested and test.ci_low > 0]
    untested = [name for name, test in at_last if not test.tested]
    text = (f'At round {last}, {subject} lowers the regret significantly (Holm-adjusted p < 0.05 over the '
            f'{len(tests)} comparisons above) for {len(significant)} of {len(at_last)} pairs'
            + (f' ({", ".join(significant)})' if significant else '') + '; '
            f'its paired 95% CI lies below 0 for {len(below)} of them.')
    if worse:
        text += f' It raises the regret (CI above 0) for {", ".join(worse)}.'
    if untested:
        text += f' {len(untested)} pairs have too few common seeds to test.'
    if len(significant) < len(at_last):
        n = min(test.n for _, test in at_last)
        text += (' Where the Holm-adjusted p is above 0.05 the data do not establish a lower regret, even where the '
                 f'unadjusted CI lies below 0 (with {n} seeds a paired t-test has {max(n - 1, 0)} degrees of freedom).')
    return lines + ['', text]


def calibration_text(agg):
    """The priors' calibration on the cold validation users (mean over seeds)."""
    calibrations = [r['problem']['calibration'] for r in agg.runs]
    parts = []
    for prior in calibrations[0]:
        slope, intercept, noise = (np.mean([c[prior][key] for c in calibrations]) for key in
                                   ('slope', 'intercept', 'noise'))
        parts.append(f'{prior} s = {slope:.4f}, c = {intercept:.3f}, sigma = {noise:.3f}')
    return ('Calibration of the priors on the cold validation users (r ~ c + s u.x by least squares, mean over '
            'seeds): ' + '; '.join(parts) + '.')


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
    lines += table + ['', calibration_text(agg), '']
    transfer = paired_regret_tests(agg, transfer_pairs(agg), rounds)
    lines += ['### Does the cross-domain prior lower regret against the no-transfer prior?', '',
              "Paired over seeds (same cold users): a policy's regret when it starts from the model's f(u^s), minus "
              'its regret when it starts from the mean warm user. Negative = the transfer prior helps.', '']
    lines += (comparison_section(transfer, 'from no transfer', 'the cross-domain prior') if transfer else
              ['No cross-domain prior was compared with the no-transfer prior (set no_transfer_prior: True).'])
    learning = paired_regret_tests(agg, learning_pairs(agg), rounds)
    if learning:
        lines += ['', '### Does learning from the feedback beat the prior as is?', '',
                  "Paired over seeds: a learning policy's regret minus the regret of the same prior's own ranking "
                  '(static, no feedback used). Negative = the feedback helps.', '']
        lines += comparison_section(learning, 'static', 'learning from the feedback')
    if figure:
        lines += ['', f'![cumulative regret, {label}]({figure})']
    return lines


def policy_lines(settings):
    lines = ['| policy | what it does |', '|---|---|']
    for name in settings['policies']:
        lines.append(f'| {name} | {POLICIES.get(name).description} |')
    return lines


def runs_by_scenario(runs, order=()):
    """{scenario: its runs}, the scenarios of ``order`` first (in that order), then the others by name."""
    by_scenario = defaultdict(list)
    for record in sorted(runs, key=lambda r: (list(order).index(r['scenario']) if r['scenario'] in order
                                              else len(order), r['scenario'], r['seed'])):
        by_scenario[record['scenario']].append(record)
    return by_scenario


def write_report(out_dir, settings, runs, stale=(), figures=None, title='Exploration for cold users', command=None,
                 order=()):
    """RESULTS.md in ``out_dir`` from ``runs``; ``figures``: scenario -> figure file name; ``command``: the one that
    regenerates it."""
    by_scenario = runs_by_scenario(runs, order)
    commands = sorted({r.get('command') for r in runs if r.get('command')})
    lines = [f'# {title}', '']
    if settings.get('notes'):
        lines += [settings['notes'].strip(), '']
    if command:
        lines += [f'Regenerate with `{command}` (run files whose inputs are unchanged are kept).', '']
    lines += ['The run files were made by ' + '; '.join(f'`{c}`' for c in commands) + '.', ''] if commands else []
    lines += ['## Policies', ''] + policy_lines(settings) + ['']
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
