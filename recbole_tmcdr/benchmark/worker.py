"""One run of a benchmark, as a worker executes it: the trials of one (scenario, model, seed), or of runs that
train together (:mod:`.training_units`), one after the other in one process, in the (first) run's directory;
and a unit of work (runs sharing pre-trained base models).

A worker tells the main process what happens through ``progress`` (a queue, or a callable when it runs in the
main process), as events (dicts with ``event`` and ``run_id``): ``start`` (``n_trials``), ``trial_start``
(``index``, ``params``), ``epoch`` (``index``, ``phase``, ``stage``, ``epoch``, ``epochs``: from the trainer,
see :mod:`recbole_tmcdr.progress`), ``trial_end`` (``index``, ``valid_score``, ``error``), and the run's
outcome: ``record`` (``record``) or ``error`` (``error``, ``traceback``).
"""

import contextlib
import logging
import math
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone

from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark.training_units import settings_key, trial_groups, training_batches


def _emit(progress, event):
    if progress is None:
        return
    try:
        if hasattr(progress, 'put'):
            progress.put(event)
        else:
            progress(event)
    except Exception:  # noqa: BLE001 - progress display must never fail a run
        pass


@contextlib.contextmanager
def isolated_run_environment(run_dir, threads):
    """cwd = run_dir, console output -> run_dir/console.log, fresh root logging handlers (RecBole's
    ``init_logger`` only configures logging once per process), sys.argv without our arguments (CDRConfig
    reads --key=value from it), torch threads; all restored afterwards."""
    import torch
    os.makedirs(run_dir, exist_ok=True)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_cwd, saved_argv, saved_threads = os.getcwd(), sys.argv, torch.get_num_threads()
    for handler in saved_handlers:
        root.removeHandler(handler)
    console = open(os.path.join(run_dir, 'console.log'), 'a', encoding='utf-8')
    try:
        os.chdir(run_dir)
        sys.argv = sys.argv[:1]
        if threads:
            torch.set_num_threads(int(threads))
        with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
            yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            with contextlib.suppress(Exception):
                handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        torch.set_num_threads(saved_threads)
        console.close()


def _epoch_events(progress, trials):
    """A listener of the trainer's epochs (:mod:`recbole_tmcdr.progress`) that sends them as ``epoch`` events of
    ``trials`` ((run_id, index) each)."""
    def send(where):
        for run_id, index in trials:
            _emit(progress, {'event': 'epoch', 'run_id': run_id, 'index': index, **where})
    return send


def _floats(metrics):
    return {str(k): float(v) for k, v in (metrics or {}).items()}


def _better(score, best, bigger):
    if best is None:
        return True
    return score > best if bigger else score < best


class FailedAfterValidation(RuntimeError):
    """The trial best on validation failed on the test users (its test, K-shot): the run fails rather than report
    another trial, which would make the choice depend on what the test users did."""


def _run_unit(primary, members, params, grid, progress):
    """Train one unit of trials (``members``: (task, trial index, params) each, as :func:`run_together` lists
    them) with ``primary``'s model and run settings; ``[(result or None, error or None, validated or None)]`` per
    member (``validated``: see :func:`_validated`) and the seconds it took."""
    from recbole_tmcdr import progress as training_progress
    from recbole_tmcdr.quick_start import run_recbole_cdr
    for task, index, _ in members:
        _emit(progress, {'event': 'trial_start', 'run_id': task['run_id'], 'index': index,
                         'params': task['trials'][index]})
    # a unit of one trial scores with its own settings, whatever grid a config file or override may hold
    config_dict = {**primary['base_config'], **params, 'seed': primary['seed'], 'inference_grid': grid}
    shown = {}  # each run shows the training of its first trial in the unit
    for task, index, _ in members:
        shown.setdefault(task['run_id'], index)
    start = time.perf_counter()
    try:
        with training_progress.listening(_epoch_events(progress, list(shown.items()))):
            result = run_recbole_cdr(model=primary['model'], saved=False, config_dict=config_dict,
                                     **primary['run_kwargs'])
    except Exception as error:  # noqa: BLE001 - e.g. a diverging learning rate: the trials lose
        print(traceback.format_exc(), file=sys.stderr)  # -> console.log
        tested = getattr(error, 'after_validation', None)  # failed on the test users, once validated
        outcomes = [(None, f'{type(error).__name__}: {error}', _validated(tested, member_params, grid))
                    for _, _, member_params in members]
    else:
        if grid is None:
            outcomes = [(result, None, None)]
        else:  # one result per setting, as its own run would have returned it
            by_settings = {settings_key(o['settings']): o for o in result.get('inference_grid') or []}
            outcomes = []
            for _, _, member_params in members:
                own = by_settings.get(settings_key({k: member_params[k] for k in grid})) or {
                    'error': 'no validation score'}
                tested = own.get('failed_after_validation')
                outcomes.append((None, own['error'], tested and {**tested, 'bigger': result['valid_score_bigger']})
                                if 'error' in own else ({**result, **own}, None, None))
    return outcomes, time.perf_counter() - start


def _validated(tested, params, grid):
    """``{'valid_score', 'bigger'}`` of a member whose run failed on the test users (``tested``: the error's
    ``after_validation``): its own setting's validation score where the run validated a grid."""
    if tested is None:
        return None
    score = tested['valid_score']
    if grid:
        own = {k: params[k] for k in grid}
        score = next((t['valid_score'] for t in tested['grid'] if settings_key(t['settings']) == settings_key(own)),
                     None)
    return {'valid_score': score, 'bigger': tested['bigger']}


def _trial_entry(task, index, result, error, seconds, members, validated=None):
    entry = {'params': task['trials'][index]}
    if result is None:
        entry.update(valid_score=None, error=error)
        score = validated and validated['valid_score']
        if score is not None and math.isfinite(score):  # it failed on the test users, once validated
            entry['failed_after_validation'] = validated
    else:
        score = result['best_valid_score']
        score = None if score is None or score != score else float(score)
        entry.update(valid_score=score, cold_valid=_floats(result['best_valid_result']))
        training = result.get('training') or {}
        entry.update({k: training.get(k) for k in ('best_epoch', 'epochs_run', 'steps', 'steps_at_best',
                                                   'stopped_on_patience') if k in training})
        if 'phases' in training:  # the unit's phases: their seconds split as the unit's are
            entry['phases'] = {name: {**phase, **({'seconds': round(phase['seconds'] / len(members), 3)}
                                                  if 'seconds' in phase else {})}
                               for name, phase in (training['phases'] or {}).items()}
    entry['seconds'] = round(seconds / len(members), 3)
    if len(members) > 1:  # one training validated these trials' settings (inference_grid)
        entry['trained_with'] = [{'model': t['model'], 'trial': i} for t, i, _ in members]
    return entry


def check_planned_inputs(task):
    """Fail ``task``'s run if the code or its model's YAML are no longer those it was planned with: its record
    would carry the planned hash for a result of other inputs (an edit or a checkout while the benchmark runs, a
    Ray node with another version of the plugin)."""
    from recbole_tmcdr.benchmark.inputs import code_and_yaml_sha
    planned = task.get('planned_inputs')
    if planned is None:
        return
    current = code_and_yaml_sha(task['model'], fresh=True)
    changed = [name for name in planned if planned[name] != current.get(name)]
    if changed:
        raise RuntimeError(f"{task['run_id']}: {' and '.join(changed)} changed since the benchmark planned this run, "
                           'so its result would be recorded as made from the planned ones. Run the benchmark again '
                           'when the files no longer change (it resumes: finished, unchanged runs are kept).')


def run_together(tasks, progress=None):
    """Run the trials of runs that train alike (:func:`training_batches`; most often one run) in the first run's
    directory, each group of trials that differ only in inference keys as one training (:func:`trial_groups`,
    the runs' own inference settings added to their trials). ``[record or exception]`` per run."""
    start_all, started_at = time.perf_counter(), datetime.now(timezone.utc).isoformat(timespec='seconds')
    primary = tasks[0]
    members = [(task, index, {**task['inference_settings'], **params} if len(tasks) > 1 else params)
               for task in tasks for index, params in enumerate(task['trials'])]
    entries = {task['run_id']: {} for task in tasks}  # run -> trial index -> (entry, result)
    for task in tasks:
        _emit(progress, {'event': 'start', 'run_id': task['run_id'], 'n_trials': len(task['trials'])})
    trial_params = [m[2] for m in members]
    units = (trial_groups(primary['model'], trial_params) if primary.get('share_training', True)
             else [([position], p, None) for position, p in enumerate(trial_params)])
    for task in tasks:
        check_planned_inputs(task)
    with isolated_run_environment(primary['run_dir'], primary.get('threads')):
        host = host_info()
        for positions, params, grid in units:
            unit = [members[position] for position in positions]
            outcomes, seconds = _run_unit(primary, unit, params, grid, progress)
            for (task, index, _), (result, error, validated) in zip(unit, outcomes):
                entry = _trial_entry(task, index, result, error, seconds, unit, validated)
                entries[task['run_id']][index] = (entry, result)
                _emit(progress, {'event': 'trial_end', 'run_id': task['run_id'], 'index': index,
                                 'valid_score': entry['valid_score'], 'error': entry.get('error')})
    for task in tasks[1:]:  # where a reader of this run's directory finds its training's log
        os.makedirs(task['run_dir'], exist_ok=True)
        with open(os.path.join(task['run_dir'], 'console.log'), 'a', encoding='utf-8') as console:
            print(f"trained with {primary['run_id']} (trials whose settings match share one training; the trials' "
                  f"trained_with say which): see {primary['run_dir']}/console.log", file=console)
    for task in tasks:
        check_planned_inputs(task)
    total = time.perf_counter() - start_all
    seconds = {task['run_id']: sum(entry['seconds'] for entry, _ in entries[task['run_id']].values())
               for task in tasks}
    outcomes = []
    for task in tasks:
        share = seconds[task['run_id']] / (sum(seconds.values()) or 1) if len(tasks) > 1 else 1
        try:
            outcomes.append(_record(task, entries[task['run_id']], host, total * share, started_at))
        except Exception as error:  # noqa: BLE001 - every trial of this run failed; the others stand
            outcomes.append(error)
    return outcomes


def run_one(task, progress=None):
    """Run the trials of one (scenario, model, seed) and return its ``results.jsonl`` record."""
    (outcome,) = run_together([task], progress)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _record(task, entries, host, total_seconds, started_at):
    """The ``results.jsonl`` record of a run from its trials' (entry, result), chosen on validation.
    ``total_seconds`` is the run's share of a training done together with other runs; ``started_at`` is that
    training's start, so the wall time of a benchmark counts it once and whole."""
    chosen_index, chosen, trials = None, None, []
    for index in sorted(entries):  # selection in trial order: the first of equal scores wins
        entry, result = entries[index]
        trials.append(entry)
        # a trial that failed on the test users competes with its validation score: the test must not choose
        validated = entry.get('failed_after_validation')
        score, bigger = ((entry['valid_score'], result.get('valid_score_bigger', True)) if result is not None
                         else (validated['valid_score'], validated['bigger']) if validated else (None, True))
        if score is not None and _better(score, None if chosen is None else chosen['score'], bigger):
            chosen_index, chosen = index, {'score': score, 'result': result, 'entry': entry}
    if chosen is None:
        errors = '; '.join(f"{t['params']}: {t.get('error', 'no validation score')}" for t in trials)
        raise RuntimeError(f"{task['run_id']}: every trial failed ({errors}). See {task['run_dir']}/console.log.")
    if chosen['result'] is None:
        raise FailedAfterValidation(
            f"{task['run_id']}: trial {chosen['entry']['params']} is the best on validation ({chosen['score']:.4f}) "
            f"but failed on the test users ({chosen['entry']['error']}); another trial is not reported in its "
            f"place, since the test users would then have chosen it. See {task['run_dir']}/console.log.")
    result = chosen['result']
    record = {
        'scenario': task['scenario'], 'model': task['model'], 'seed': task['seed'],
        'config_hash': task['config_hash'],
        'chosen': {**task['defaults'], **task['trials'][chosen_index]},
        'chosen_trial': chosen_index,
        'valid_metric': task['valid_metric'],
        'valid_score': chosen['score'],
        'trials': trials,
        'cold_valid': _floats(result['best_valid_result']),
        'cold_test': _floats(result['test_result']),
        'training': result.get('training'),  # the chosen trial's bridge stage: best epoch, steps, per-epoch history
    }
    if task.get('kshot'):
        record['kshot'] = {str(k): v for k, v in (result.get('kshot_results') or {}).items()}
        record['kshot_valid'] = {str(k): v for k, v in (result.get('kshot_valid_results') or {}).items()}
        if result.get('kshot_foldin'):  # the fold-in settings chosen per K on validation (kshot_foldin_search)
            record['kshot_foldin'] = {str(k): v for k, v in result['kshot_foldin'].items()}
    if result.get('routing'):  # a router: its choice per K, the candidates' validation scores, skipped / reused ones
        record['routing'] = result['routing']
    record.update({
        'split_stats': result.get('split_stats'),
        'timings': {'trials': [t['seconds'] for t in trials], 'total': round(total_seconds, 3)},
        'host': host,
        'scenario_source': task['scenario_source'], 'search_space': task['search_space'],
        'lr_search': task['lr_search'], 'overrides': task['overrides'], 'kshot_asked': task.get('kshot'),
        'code_version': task['code_version'],
        'started_at': started_at,
        'finished_at': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'run_dir': task['run_dir'],
    })
    return results_io.to_jsonable(record)


def cpu_model():
    """The CPU's model name (Linux: /proc/cpuinfo), else ``platform.processor()``, else 'unknown'. Recorded with
    every run: float rounding differs between CPU models, so a rerun on another one can train differently."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def host_info():
    import importlib.metadata as metadata
    import torch
    versions = {}
    for package in ('recbole', 'recbole-cdr', 'recbole-tmcdr'):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {'hostname': platform.node(), 'cpu': cpu_model(), 'platform': platform.platform(),
            'python': platform.python_version(),
            'cpu_count': os.cpu_count(), 'torch': torch.__version__, 'torch_threads': torch.get_num_threads(),
            'pid': os.getpid(), **versions}


def run_group(tasks, progress=None, run_fn=None):
    """Run a unit of work in a worker: runs that train alike together (:func:`training_batches`), or each with
    ``run_fn(task, progress)`` if given (tests inject fakes). Each run's outcome is sent at once as a ``record`` /
    ``error`` event (the main process writes it to results.jsonl) and also returned:
    [(run_id, record, error, traceback)]."""
    from recbole_tmcdr.registry import import_modules
    for task in tasks:  # a fresh worker process (or Ray worker) knows only the plugin's own models
        import_modules(task.get('imports'))
    outcomes = []
    for batch in [[task] for task in tasks] if run_fn else training_batches(tasks):
        try:
            records = [run_fn(batch[0], progress)] if run_fn else run_together(batch, progress)
        except Exception as error:  # noqa: BLE001 - one failed run does not stop the others
            records = [error] * len(batch)
        for task, record in zip(batch, records):
            if isinstance(record, Exception):
                outcome = (task['run_id'], None, f'{type(record).__name__}: {record}',
                           ''.join(traceback.format_exception(record)))
                _emit(progress, {'event': 'error', 'run_id': task['run_id'], 'error': outcome[2],
                                 'traceback': outcome[3]})
            else:
                outcome = (task['run_id'], record, None, None)
                _emit(progress, {'event': 'record', 'run_id': task['run_id'], 'record': record})
            outcomes.append(outcome)
    return outcomes
