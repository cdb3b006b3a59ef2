"""The parts of a benchmark report, each from an :class:`~.aggregate.Aggregate`: its tables (pandas DataFrames,
written with ``DataFrame.to_markdown``; ``table.csv`` with ``DataFrame.to_csv``) and the paragraphs generated
from the same numbers, so that the prose cannot contradict the tables."""

import numpy as np
import pandas as pd
from tabulate import DataRow, TableFormat

from recbole_tmcdr.benchmark import paper
from recbole_tmcdr.benchmark.aggregate import FLOOR_MODELS, METRICS, Verdict, cell_frame, history_frame, is_target_only
from recbole_tmcdr.benchmark.stats import ALPHA, MIN_PAIRS, finite, fmt_p

_ROW = DataRow('|', '|', '|')


def _alignment_row(widths, _aligns):
    return '|' + '|'.join(['---'] + [':---:'] * (len(widths) - 1)) + '|'


# A GitHub pipe table whose cells are not padded to a common width: the first column left-aligned, the others
# centred.
PIPE_TABLE = TableFormat(lineabove=None, linebelowheader=_alignment_row, linebetweenrows=None, linebelow=None,
                         headerrow=_ROW, datarow=_ROW, padding=1, with_header_hide=None)


def markdown_table(frame):
    """``frame`` as a Markdown table, its columns the header, its cells as they are (no number parsing)."""
    return frame.to_markdown(index=False, tablefmt=PIPE_TABLE, disable_numparse=True, stralign=None, numalign=None)


def _table(header, rows):
    return markdown_table(pd.DataFrame(rows, columns=header))


def format_summary(summary, digits=4):
    if summary is None:
        return '–'
    text = f'{summary.mean:.{digits}f}'
    if summary.half_width is not None:
        text += f' ± {summary.half_width:.{digits}f}'
    return text


def _model_label(model):
    return f'{model} (target-only)' if is_target_only(model) else model


def main_table(agg, metrics=METRICS):
    """Rows = models, columns = scenario x metric: mean ± CI, bold where best of the column, ``\\*`` (``\\*↓``)
    where a TMCDR model differs significantly from the baseline, ``†`` for negative transfer, ``(n=…)`` where a
    model has fewer seeds than the scenario's most."""
    auc = metrics[0][1]
    frame = cell_frame(agg, metrics)
    frame['best'] = frame.groupby(['scenario', 'metric'])['mean'].transform('max')
    frame['max_n'] = frame['scenario'].map(frame[frame['metric'] == auc].groupby('scenario')['n'].max()).fillna(0)

    def cell(row):
        if row.summary is None:
            return '–'
        text = f'**{format_summary(row.summary)}**' if row.mean == row.best else format_summary(row.summary)
        if agg.starred(row.scenario, row.model, row.metric):
            text += '\\*' + ('↓' if agg.significantly_worse(row.scenario, row.model, row.metric) else '')
        text += ' †' if row.metric == auc and row.flagged else ''
        return text + (f' (n={row.summary.n})' if row.summary.n < row.max_n else '')

    frame['cell'] = [cell(row) for row in frame.itertuples()]
    columns = [(scenario, key) for scenario in agg.scenarios for _, key in metrics]
    table = frame.pivot(index='model', columns=['scenario', 'metric'], values='cell')
    table = table.reindex(index=agg.models, columns=columns).fillna('–')
    table.columns = [f'{scenario} {name}' for scenario in agg.scenarios for name, _ in metrics]
    table.insert(0, 'model', [_model_label(m) for m in agg.models])
    return markdown_table(table)


CSV_FIELDS = ('mean', 'ci95', 'n', 'diff_vs_baseline', 'p_vs_baseline', 'p_holm_vs_baseline')


def _csv_number(value, spec):
    return '' if value is None else format(value, spec)


def write_csv(agg, path, metrics=METRICS):
    """``table.csv``: a row per model, per scenario and metric the columns of :data:`CSV_FIELDS`, then the
    scenario's negative-transfer flag; empty where a model was not run (or not tested)."""
    frame = cell_frame(agg, metrics)
    summary, test = frame['summary'], frame['test']
    fields = pd.DataFrame({
        'mean': summary.map(lambda s: _csv_number(s and s.mean, '.6f')),
        'ci95': summary.map(lambda s: _csv_number(s and s.half_width, '.6f')),
        'n': summary.map(lambda s: '' if s is None else s.n),
        'diff_vs_baseline': test.map(lambda t: _csv_number(t and t.diff, '.6g')),
        'p_vs_baseline': test.map(lambda t: _csv_number(t and t.p, '.6g')),
        'p_holm_vs_baseline': test.map(lambda t: _csv_number(t and t.p_holm, '.6g'))})
    long = pd.concat([frame[['scenario', 'model', 'metric']], fields], axis=1).melt(
        id_vars=['scenario', 'model', 'metric'], var_name='field')
    long['column'] = long['scenario'] + '/' + long['metric'] + '/' + long['field']
    flags = frame.drop_duplicates(['scenario', 'model'])
    flags = pd.DataFrame({'model': flags['model'], 'column': flags['scenario'] + '/negative_transfer',
                          'value': flags['flagged'].astype(int)})
    header = [f'{scenario}/{column}' for scenario in agg.scenarios
              for column in [f'{key}/{name}' for _, key in metrics for name in CSV_FIELDS] + ['negative_transfer']]
    table = pd.concat([long, flags]).pivot(index='model', columns='column', values='value')
    table = table.reindex(index=agg.models, columns=header)
    table = table.mask(table.isna(), '')
    table.insert(0, 'target_only', [int(is_target_only(m)) for m in agg.models])
    table.to_csv(path, index_label='model', lineterminator='\r\n', encoding='utf-8')  # the csv module's line ends


def write_runs_csv(agg, path, metrics=METRICS):
    """``runs.csv``: one row per run, its chosen hyperparameters, validation score, cold-test metrics, bridge
    stage (best epoch, epochs, steps) and seconds (total and pre-training)."""
    rows = []
    for record in agg.runs.sort_values(['scenario', 'model', 'seed'])['record']:
        training, cost = record.get('training') or {}, _run_cost(record)
        rows.append({'scenario': record['scenario'], 'model': record['model'], 'seed': record['seed'],
                     'chosen': ' '.join(f'{k}={v}' for k, v in (record.get('chosen') or {}).items()),
                     'trials': cost['trials'], 'valid_metric': record.get('valid_metric'),
                     'valid_score': record.get('valid_score'),
                     **{f'test_{key}': (record.get('cold_test') or {}).get(key) for _, key in metrics},
                     **{key: training.get(key) for key in ('best_epoch', 'epochs_run', 'steps', 'steps_at_best')},
                     'seconds': cost['total'], 'pretraining_seconds': cost['pretraining'],
                     'code_version': record.get('code_version'), 'finished_at': record.get('finished_at')})
    pd.DataFrame(rows).to_csv(path, index=False, lineterminator='\r\n', encoding='utf-8')


def _test_cells(test):
    """Effect size with its 95% CI, raw p and Holm-adjusted p of one PairedTest."""
    if test is None:
        return ['–', 'n/a', 'n/a']
    if not test.tested:
        reason = f'n/a (n={test.n})' if test.n < MIN_PAIRS else 'n/a (equal)'
        return [test.ci_text(), reason, reason]
    star = ' \\*' + ('↓' if test.diff < 0 else '') if test.significant else ''
    return [test.ci_text(), fmt_p(test.p), fmt_p(test.p_holm) + star]


def tests_table(agg, metrics=METRICS):
    if not agg.tests:
        return None
    header = ['scenario', 'model', 'baseline (best other by AUC)', 'pairs']
    for name, _ in metrics:
        header += [f'Δ{name} [95% CI]', f'p ({name})', f'Holm p ({name})']
    rows = [[scenario, model, entry['baseline'], entry[metrics[0][1]].n,
             *[cell for _, key in metrics for cell in _test_cells(entry[key])]]
            for (scenario, model), entry in agg.tests.items()]
    return _table(header, rows)


def pairs_table(comparisons, metrics=METRICS):
    """``pair_comparisons`` as a table, a row per scenario and pair: TMCDR_X against EMCDR_X for each base model
    X (and TMCDR_CML against SSCDR, the paper's Figure 1 pair), means over seeds, the paired difference with its
    95% CI, raw and Holm-adjusted p; None if no pair was run."""
    if not comparisons:
        return None
    frame = pd.DataFrame({'scenario': [c.scenario for c in comparisons],
                          'pair': [f'{c.tmcdr} vs {c.baseline}' for c in comparisons],
                          'metric': [c.metric for c in comparisons], 'comparison': comparisons})
    rows = []
    for (scenario, pair), group in frame.groupby(['scenario', 'pair'], sort=False):
        by_metric = dict(zip(group['metric'], group['comparison']))
        rows.append([scenario, pair, max(c.n for c in by_metric.values())])
        for name, _ in metrics:
            c = by_metric.get(name)
            rows[-1] += (['', '', '', '', ''] if c is None else
                         [f'{c.tmcdr_mean:.4f} vs {c.baseline_mean:.4f}', *_test_cells(c.test), c.verdict])
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
                     + (f'; {untested} not tested (fewer than {MIN_PAIRS} common seeds, or no variation).'
                        if untested else '.'))
        for verdict in (Verdict.BETTER, Verdict.WORSE):
            hits = [c for c in tested if c.verdict == verdict]
            listed = '; '.join(f'{c.tmcdr} {c.label}' for c in hits) or 'none'
            lines.append(f'- TMCDR significantly {verdict.upper()}: {len(hits)} ({listed}).')
        quiet = sum(c.verdict == Verdict.NOT_SIGNIFICANT for c in tested)
        lines.append(f'- Not significant: {quiet}.')
    lines += ['', f'Significance is judged on Holm-adjusted p-values (family-wise error {ALPHA}) over the family of '
                 'every TMCDR test in this report: these pairs and the tests against the best other model.']
    return '\n'.join(lines)


def _pair_verdict(c):
    if c.verdict == Verdict.UNTESTED:
        return f'{c.metric} n/a (n={c.n})'
    word = {Verdict.BETTER: 'BETTER', Verdict.WORSE: 'WORSE'}.get(c.verdict, 'n.s.')
    return f'{c.metric} {word} (Δ {c.test.ci_text()}, Holm p {fmt_p(c.test.p_holm)})'


def verdict_summary(agg):
    """The report's opening: per scenario, the Holm-adjusted verdict of each compared pair (TMCDR_X vs EMCDR_X,
    TMCDR_CML vs SSCDR) on each metric, and which transfer models fall below the best target-only floor."""
    lines = []
    for scenario in agg.scenarios:
        seeds = agg.runs.loc[agg.runs['scenario'] == scenario, 'seed'].nunique()
        pairs = {}
        for c in agg.comparisons:
            if c.scenario == scenario:
                pairs.setdefault(f'{c.tmcdr} vs {c.baseline}', []).append(_pair_verdict(c))
        parts = [f'{pair}: {", ".join(verdicts)}' for pair, verdicts in pairs.items()] or ['no compared pair run']
        if agg.floors.get(scenario):
            flagged = [m for m in agg.models_in(scenario) if agg.flagged(scenario, m)]
            floor = max(agg.floors[scenario], key=lambda item: item[1])[0]
            parts.append(f'negative transfer (below {floor}, one-sided, Holm): '
                         + (', '.join(flagged) if flagged else 'none'))
        lines.append(f'- **{scenario}** ({seeds} seed{"s" if seeds != 1 else ""}): ' + '; '.join(parts) + '.')
    return '\n'.join(lines)


def run_time_text(agg):
    """Run time (the sum of every run's seconds) and wall time (first start to last finish, pauses included)."""
    frame = pd.DataFrame({'total': [(r.get('timings') or {}).get('total') for r in agg.records],
                          'finished': pd.to_datetime([r.get('finished_at') for r in agg.records], utc=True,
                                                     errors='coerce')}).dropna()
    if frame.empty:
        return None
    started = (frame['finished'] - pd.to_timedelta(frame['total'], unit='s')).min()
    wall = (frame['finished'].max() - started).total_seconds()
    return (f'Run time {frame["total"].sum() / 3600:.1f} h over {len(frame)} runs; wall time {wall / 3600:.1f} h '
            f'from {started:%Y-%m-%d %H:%M} to {frame["finished"].max():%Y-%m-%d %H:%M} UTC (pauses between '
            'sessions included).')


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
        entries = [entry for entry in agg.floor_tests.get(scenario, [])
                   if entry[1] <= floor_auc or entry[-1].significant]
        if not entries:
            lines.append(f'- {scenario}: every transfer model has a mean AUC above the target-only floor {floor} '
                         f'(AUC {floor_auc:.4f}).')
            continue
        for model, auc, _, _, test in entries:
            verdict = ('† negative transfer' if test.significant else 'not above the floor (n.s.)' if test.tested
                       else f'not above the floor (not tested, n={test.n})')
            lines.append(f'- {scenario}: {model} (AUC {auc:.4f}) vs the target-only floor {floor} '
                         f'(AUC {floor_auc:.4f}): {verdict}; Δ {test.ci_text()}, one-sided p {fmt_p(test.p)}, '
                         f'Holm p {fmt_p(test.p_holm)}.')
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
    """Per scenario, a table of models x K: every metric's mean ± CI, '/'-separated."""
    if not agg.kshot:
        return None
    frame = pd.DataFrame([(scenario, model, k, ' / '.join(format_summary(per_metric.get(key), 3) for _, key in metrics))
                          for (scenario, model), per_k in agg.kshot.items() for k, per_metric in per_k.items()],
                         columns=['scenario', 'model', 'K', 'cell'])
    parts = []
    for scenario in agg.scenarios:
        cells = frame[frame['scenario'] == scenario]
        if cells.empty:
            continue
        table = cells.pivot(index='model', columns='K', values='cell')
        table = table.reindex(index=[m for m in agg.models if m in table.index], columns=sorted(table.columns))
        table = table.fillna(' / '.join('–' for _ in metrics)).rename(columns=lambda k: f'K={k}')
        table.insert(0, 'model', [_model_label(m) for m in table.index])
        parts.append(f'**{scenario}** ({" / ".join(name for name, _ in metrics)}, cold test users with at least '
                     'K+1 target interactions; the first K are revealed):\n\n' + markdown_table(table))
    return '\n\n'.join(parts)


def hyperparameter_section(agg):
    """The choice of every run whose hyperparameters were searched (more than one trial), with each trial's
    validation score."""
    searched = agg.runs[[len(r.get('trials') or []) > 1 for r in agg.runs['record']]]
    rows = []
    for record in searched.sort_values(['scenario', 'model', 'seed'])['record']:
        scores = ', '.join('–' if t.get('valid_score') is None else f"{t['valid_score']:.4f}"
                           for t in record['trials'])
        rows.append([record['scenario'], record['model'], record['seed'],
                     ', '.join(f'{k}={v}' for k, v in (record.get('chosen') or {}).items()) or '(defaults)',
                     f"{record.get('valid_metric', 'valid')}: {scores}"])
    if not rows:
        return None
    return _table(['scenario', 'model', 'seed', 'chosen (on cold validation)', 'validation score per trial'], rows)


def training_section(agg):
    """The bridge stage of each model with one (mapping / meta network): best validated epoch, epochs run and
    optimizer (for TMCDR: outer) steps, mean over seeds, how many seeds stopped on patience, and TMCDR's
    inner-step ratio at the best epoch."""
    training = agg.runs['record'].map(lambda r: r.get('training'))
    training = training[training.map(lambda t: isinstance(t, dict) and None not in
                                     (t.get('best_epoch'), t.get('epochs_run'), t.get('steps')))]
    if training.empty:
        return None
    runs = agg.runs.loc[training.index, ['scenario', 'model', 'seed']].assign(
        best_epoch=training.map(lambda t: t['best_epoch']), epochs_run=training.map(lambda t: t['epochs_run']),
        steps=training.map(lambda t: t['steps']), steps_at_best=training.map(lambda t: t.get('steps_at_best') or 0),
        stopped=training.map(lambda t: bool(t.get('stopped_on_patience'))),
        warm_start=training.map(lambda t: t.get('best_stage') == 'warm_start'))
    history = history_frame(agg).merge(runs[['scenario', 'model', 'seed', 'best_epoch']])
    at_best = history[history['epoch'] == history['best_epoch']].dropna(subset=['inner_step_ratio'])
    table = runs.groupby(['scenario', 'model'], observed=True).agg(
        seeds=('seed', 'size'), best_epoch=('best_epoch', 'mean'), warm_start=('warm_start', 'any'),
        epochs_run=('epochs_run', 'mean'), steps_at_best=('steps_at_best', 'mean'), steps=('steps', 'mean'),
        stopped=('stopped', 'sum'))
    table['ratio'] = at_best.groupby(['scenario', 'model'], observed=True)['inner_step_ratio'].mean()
    rows = [[r.scenario, r.model, r.seeds, f'{r.best_epoch:.0f}' + (' (warm_start)' if r.warm_start else ''),
             f'{r.epochs_run:.0f}', f'{r.steps_at_best:.0f} / {r.steps:.0f}', r.stopped,
             '–' if np.isnan(r.ratio) else f'{r.ratio:.4f}'] for r in table.reset_index().itertuples()]
    return _table(['scenario', 'model', 'seeds', 'best epoch', 'epochs run', 'steps at best / run',
                   'stopped on patience', 'inner-step ratio at best'], rows)


def _run_cost(record):
    """Seconds of one run: in total, pre-training and other phases over all trials (NaN: no trial recorded its
    phases), and whether its first trial reused every cached pre-training."""
    total = (record.get('timings') or {}).get('total')
    phases = [t.get('phases') for t in record.get('trials') or [] if isinstance(t.get('phases'), dict)]

    def seconds(pretraining):
        return sum(p.get('seconds', 0) for ph in phases for p in ph.values() if ('reused' in p) == pretraining)

    first = [p for p in phases[0].values() if 'reused' in p] if phases else []
    return {'total': float(total) if finite(total) else np.nan, 'trials': len(record.get('trials') or []),
            'pretraining': seconds(True) if phases else np.nan, 'other': seconds(False) if phases else np.nan,
            'known': bool(phases), 'reused': bool(first) and all(p['reused'] for p in first)}


def cost_section(agg):
    """Per scenario and model with a timed run: mean seconds per run, of which pre-training and the other phases,
    and how many runs reused the cached pre-training (their cost then excludes it)."""
    costs = agg.runs.join(pd.DataFrame([_run_cost(r) for r in agg.runs['record']], index=agg.runs.index))
    table = costs.groupby(['scenario', 'model'], observed=True).agg(
        seeds=('seed', 'size'), trials=('trials', 'max'), timed=('total', 'count'), total=('total', 'mean'),
        pretraining=('pretraining', 'mean'), other=('other', 'mean'), reused=('reused', 'sum'), known=('known', 'sum'))
    table = table[table['timed'] > 0]
    if table.empty:
        return None
    rows = [[r.scenario, r.model, r.seeds, r.trials, f'{r.total:.0f}',
             *((f'{r.pretraining:.0f}', f'{r.other:.0f}', f'{r.reused} of {r.known}') if r.known else ['–'] * 3)]
            for r in table.reset_index().itertuples()]
    return _table(['scenario', 'model', 'seeds', 'trials per run', 'mean seconds per run', 'of which pre-training',
                   'other phases', 'runs that reused the cached pre-training'], rows)
