"""One run of a benchmark, as a worker executes it: the trials of one (scenario, model, seed), one after the
other in one process, in the run's own directory; and a unit of work (runs sharing pre-trained base models).

A worker tells the main process what happens through ``progress`` (a queue, or a callable when it runs in the
main process), as events (dicts with ``event`` and ``run_id``): ``start`` (``n_trials``), ``trial_start``
(``index``, ``params``), ``epoch`` (``index``, ``phase``, ``stage``, ``epoch``, ``epochs``: from the trainer,
see :mod:`recbole_tmcdr.progress`), ``trial_end`` (``index``, ``valid_score``, ``error``), and the run's
outcome: ``record`` (``record``) or ``error`` (``error``, ``traceback``).
"""

import contextlib
import logging
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone

from recbole_tmcdr.benchmark import results as results_io


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


def _epoch_events(progress, run_id, index):
    """A listener of the trainer's epochs (:mod:`recbole_tmcdr.progress`) that sends them as ``epoch`` events."""
    return lambda where: _emit(progress, {'event': 'epoch', 'run_id': run_id, 'index': index, **where})


def _floats(metrics):
    return {str(k): float(v) for k, v in (metrics or {}).items()}


def _better(score, best, bigger):
    if best is None:
        return True
    return score > best if bigger else score < best


def run_one(task, progress=None):
    """Run the trials of one (scenario, model, seed) and return its ``results.jsonl`` record."""
    from recbole_tmcdr import progress as training_progress
    from recbole_tmcdr.quick_start import run_recbole_cdr

    start_all = time.perf_counter()
    trials, chosen_index, chosen = [], None, None
    _emit(progress, {'event': 'start', 'run_id': task['run_id'], 'n_trials': len(task['trials'])})
    with isolated_run_environment(task['run_dir'], task.get('threads')):
        host = host_info()
        for index, params in enumerate(task['trials']):
            _emit(progress, {'event': 'trial_start', 'run_id': task['run_id'], 'index': index, 'params': params})
            config_dict = {**task['base_config'], **params, 'seed': task['seed']}
            start = time.perf_counter()
            entry = {'params': params}
            try:
                with training_progress.listening(_epoch_events(progress, task['run_id'], index)):
                    result = run_recbole_cdr(model=task['model'], saved=False, config_dict=config_dict,
                                             **task['run_kwargs'])
            except Exception as error:  # noqa: BLE001 - e.g. a diverging learning rate: the trial loses
                entry.update(valid_score=None, error=f'{type(error).__name__}: {error}')
                print(traceback.format_exc(), file=sys.stderr)  # -> console.log
                result = None
            else:
                score = result['best_valid_score']
                score = None if score is None or score != score else float(score)
                entry.update(valid_score=score, cold_valid=_floats(result['best_valid_result']))
                training = result.get('training') or {}
                entry.update({k: training.get(k) for k in ('best_epoch', 'epochs_run', 'steps', 'steps_at_best',
                                                           'stopped_on_patience', 'phases') if k in training})
                if score is not None and _better(score, None if chosen is None else chosen['score'],
                                                 result.get('valid_score_bigger', True)):
                    chosen_index, chosen = index, {'score': score, 'result': result}
            entry['seconds'] = round(time.perf_counter() - start, 3)
            trials.append(entry)
            _emit(progress, {'event': 'trial_end', 'run_id': task['run_id'], 'index': index,
                             'valid_score': entry['valid_score'], 'error': entry.get('error')})
    if chosen is None:
        errors = '; '.join(f"{t['params']}: {t.get('error', 'no validation score')}" for t in trials)
        raise RuntimeError(f"{task['run_id']}: every trial failed ({errors}). See {task['run_dir']}/console.log.")
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
        'timings': {'trials': [t['seconds'] for t in trials], 'total': round(time.perf_counter() - start_all, 3)},
        'host': host,
        'scenario_source': task['scenario_source'], 'search_space': task['search_space'],
        'lr_search': task['lr_search'], 'overrides': task['overrides'], 'kshot_asked': task.get('kshot'),
        'code_version': task['code_version'],
        'finished_at': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'run_dir': task['run_dir'],
    })
    return results_io.to_jsonable(record)


def host_info():
    import importlib.metadata as metadata
    import torch
    versions = {}
    for package in ('recbole', 'recbole-cdr', 'recbole-tmcdr'):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {'hostname': platform.node(), 'platform': platform.platform(), 'python': platform.python_version(),
            'cpu_count': os.cpu_count(), 'torch': torch.__version__, 'torch_threads': torch.get_num_threads(),
            'pid': os.getpid(), **versions}


def run_group(tasks, progress=None, run_fn=run_one):
    """Run a unit of work in a worker. Each run's outcome is sent at once as a ``record`` / ``error`` event
    (the main process writes it to results.jsonl) and also returned: [(run_id, record, error, traceback)]."""
    from recbole_tmcdr.registry import import_modules
    for task in tasks:  # a fresh worker process (or Ray worker) knows only the plugin's own models
        import_modules(task.get('imports'))
    outcomes = []
    for task in tasks:
        try:
            record = run_fn(task, progress)
        except Exception as error:  # noqa: BLE001 - one failed run does not stop the others
            outcome = (task['run_id'], None, f'{type(error).__name__}: {error}', traceback.format_exc())
            _emit(progress, {'event': 'error', 'run_id': task['run_id'], 'error': outcome[2], 'traceback': outcome[3]})
        else:
            outcome = (task['run_id'], record, None, None)
            _emit(progress, {'event': 'record', 'run_id': task['run_id'], 'record': record})
        outcomes.append(outcome)
    return outcomes
