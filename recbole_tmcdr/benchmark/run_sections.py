"""The report's parts about single runs rather than models: the chosen hyperparameters, the bridge stage's
epochs and steps, the cost of each run, the run and wall time, and ``runs.csv`` (one row per run)."""

import numpy as np
import pandas as pd

from recbole_tmcdr.benchmark.aggregate import METRICS, history_frame
from recbole_tmcdr.benchmark.sections import rows_table
from recbole_tmcdr.benchmark.stats import finite


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


def busy_seconds(starts, ends):
    """Length of the union of the intervals [start, end): the time during which at least one run was running."""
    order = np.argsort(starts)
    busy, current_start, current_end = 0.0, None, None
    for start, end in zip(np.asarray(starts)[order], np.asarray(ends)[order]):
        if current_end is None or start > current_end:
            busy += 0.0 if current_end is None else current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    return busy + (0.0 if current_end is None else current_end - current_start)


def training_intervals(records):
    """(started, finished) of each record's training, as a frame. ``started_at`` where a record has it; older
    records only have their finish and seconds, and runs that trained together (a trial's ``trained_with``
    names another model) each carry their share of that one training's seconds, so such runs of a scenario
    and seed form one interval as long as their seconds together."""
    frame = pd.DataFrame({
        'total': [(r.get('timings') or {}).get('total') for r in records],
        'finished': pd.to_datetime([r.get('finished_at') for r in records], utc=True, errors='coerce'),
        'started': pd.to_datetime([r.get('started_at') for r in records], utc=True, errors='coerce'),
        'unit': [_training_unit(r, position) for position, r in enumerate(records)]})
    frame = frame.dropna(subset=['total', 'finished'])
    unit = frame.groupby('unit')
    estimated = unit['finished'].transform('max') - pd.to_timedelta(unit['total'].transform('sum'), unit='s')
    frame['started'] = frame['started'].fillna(estimated)
    return frame


def _training_unit(record, position):
    partners = {m['model'] for t in record.get('trials') or [] for m in t.get('trained_with') or []}
    if partners - {record.get('model')}:
        return ('together', record.get('scenario'), record.get('seed'),
                tuple(sorted(partners | {record.get('model')})))
    return ('alone', position)


def run_time(records):
    """Run time (the sum of every run's seconds) and wall time of records: ``busy_h`` while at least one run
    was running (a spec finished over several sittings does not count the gaps), ``span_h`` from first start
    to last finish. None if no record has its timings."""
    frame = training_intervals(records)
    if frame.empty:
        return None
    epoch = lambda column: (column - frame['started'].min()).dt.total_seconds().to_numpy()  # noqa: E731
    return {'runs': len(frame), 'run_h': frame['total'].sum() / 3600,
            'busy_h': busy_seconds(epoch(frame['started']), epoch(frame['finished'])) / 3600,
            'span_h': (frame['finished'].max() - frame['started'].min()).total_seconds() / 3600,
            'first_start': frame['started'].min(), 'last_finish': frame['finished'].max()}


def run_time_text(agg):
    """The report's line of :func:`run_time`."""
    t = run_time(agg.records)
    if t is None:
        return None
    return (f"Run time {t['run_h']:.1f} h over {t['runs']} runs; wall time {t['busy_h']:.1f} h while runs were "
            f"running ({t['span_h']:.1f} h from {t['first_start']:%Y-%m-%d %H:%M} to "
            f"{t['last_finish']:%Y-%m-%d %H:%M} UTC, gaps between sittings included).")


def hyperparameter_section(agg):
    """The choice of every run whose hyperparameters were searched (more than one trial), with each trial's
    validation score."""
    searched = agg.runs[[len(r.get('trials') or []) > 1 for r in agg.runs['record']]]
    rows = []
    for record in searched.sort_values(['scenario', 'model', 'seed'])['record']:
        trials = record['trials']
        keys = list((trials[0].get('params') or {}).keys())
        scores = ', '.join('/'.join(str((t.get('params') or {}).get(k)) for k in keys) + ' → '
                           + ('–' if t.get('valid_score') is None else f"{t['valid_score']:.4f}") for t in trials)
        rows.append([record['scenario'], record['model'], record['seed'],
                     ', '.join(f'{k}={v}' for k, v in (record.get('chosen') or {}).items()) or '(defaults)',
                     f"{record.get('valid_metric', 'valid')} by {'/'.join(keys)}: {scores}"])
    if not rows:
        return None
    return rows_table(['scenario', 'model', 'seed', 'chosen (on cold validation)', 'validation score per trial'], rows)


def search_section(agg):
    """A row per searched model and grid: the trials of a run, and how often each value was chosen over its runs
    (scenarios and seeds); a grid whose every run chose the same end value is marked: the best setting may lie
    beyond it."""
    rows = []
    for model, group in agg.runs.groupby('model', observed=True, sort=False):
        by_grid = {}  # runs of one model may differ in grid (e.g. a model YAML changed between scenarios)
        for r in group['record']:
            if len(r.get('trials') or []) > 1 and r.get('search_space'):
                by_grid.setdefault(repr(sorted(r['search_space'].items())), []).append(r)
        rows += [_search_row(model, records) for records in by_grid.values()]
    if not rows:
        return None
    return rows_table(['model', 'grid', 'trials per run', 'runs', 'chosen on cold validation (runs)'], rows)


def _search_row(model, records):
    """The row of ``search_section`` of the runs of ``model`` that searched one grid."""
    grid = records[0]['search_space']
    parts = []
    for key, values in grid.items():
        chosen = pd.Series([(r.get('chosen') or {}).get(key) for r in records]).value_counts()
        text = ', '.join(f'{value} ×{count}' for value, count in chosen.items())
        ends = (min(values), max(values)) if len(values) > 1 and all(finite(v) for v in values) else ()
        at_end = len(chosen) == 1 and chosen.index[0] in ends
        parts.append(f'{key}: {text}' + (' (every run at the end of the grid)' if at_end else ''))
    trials = sorted({len(r['trials']) for r in records})
    return [model, '; '.join(f'{k} {v}' for k, v in grid.items()), '/'.join(map(str, trials)), len(records),
            '; '.join(parts)]


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
        seeds=('seed', 'size'), best_epoch=('best_epoch', 'mean'), best_min=('best_epoch', 'min'),
        best_max=('best_epoch', 'max'), warm_start=('warm_start', 'any'),
        epochs_run=('epochs_run', 'mean'), steps_at_best=('steps_at_best', 'mean'), steps=('steps', 'mean'),
        stopped=('stopped', 'sum'))
    table['ratio'] = at_best.groupby(['scenario', 'model'], observed=True)['inner_step_ratio'].mean()
    rows = [[r.scenario, r.model, r.seeds, f'{r.best_epoch:.0f} ({r.best_min:.0f}–{r.best_max:.0f})'
             + (' (warm_start)' if r.warm_start else ''),
             f'{r.epochs_run:.0f}', f'{r.steps_at_best:.0f} / {r.steps:.0f}', r.stopped,
             '–' if np.isnan(r.ratio) else f'{r.ratio:.4f}'] for r in table.reset_index().itertuples()]
    return rows_table(['scenario', 'model', 'seeds', 'best epoch (min–max)', 'epochs run', 'steps at best / run',
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
    return rows_table(['scenario', 'model', 'seeds', 'trials per run', 'mean seconds per run', 'of which pre-training',
                   'other phases', 'runs that reused the cached pre-training'], rows)
