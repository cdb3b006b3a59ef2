"""Run every (scenario, model, seed) of a spec, with its hyperparameter search, and record one line each.

* One RUN = one (scenario, model, seed): its trials (the grid of the model's search space) run one after
  the other in the same process, so the first trial pre-trains the base models and the others reuse the
  cached embeddings. The trial with the best cold VALIDATION score (``best_valid_score``, RecBole's
  ``valid_metric``) is chosen; its cold-test metrics are the result. Test metrics of the other trials are
  never recorded.
* Runs execute in the current process (``jobs == 1``), in local worker processes
  (:class:`concurrent.futures.ProcessPoolExecutor`, spawn, one fresh process per run), or as Ray tasks
  (``ray_address``). Each run works in ``<out>/runs/<scenario>/<model>/seed<k>/`` (RecBole's ``log/``,
  ``saved/``; the run's console output goes to ``console.log`` there).
* Only the main process writes ``results.jsonl`` (see :mod:`recbole_tmcdr.benchmark.results`). A run whose
  last line in it has the same ``config_hash`` is skipped (resume); a changed config re-runs it.
"""

import contextlib
import json
import logging
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import datetime, timezone

from tqdm.auto import tqdm

from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark.spec import (
    BenchmarkSpec, SpecError, absolute_path_overrides, config_hash, defaults_unless_set, file_sha, grid,
    model_search_space, resolve_scenario, resolved_value, run_inputs,
)

log = logging.getLogger('recbole_tmcdr.benchmark')


def default_jobs():
    return max(1, min(2, os.cpu_count() or 1))


def code_version():
    """``git`` commit of the checkout the plugin runs from (``+dirty`` if modified), or the package version."""
    from recbole_tmcdr import __version__
    from recbole_tmcdr.config import PACKAGE_DIR
    try:
        root = str(PACKAGE_DIR.parent)
        commit = subprocess.run(['git', '-C', root, 'rev-parse', '--short', 'HEAD'], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(['git', '-C', root, 'status', '--porcelain', '--untracked-files=no'],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return f'{__version__}+g{commit}{".dirty" if dirty else ""}'
    except (OSError, subprocess.SubprocessError):
        return __version__


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


# ----- planning
def plan(spec, out_dir, cache_dir):
    """Tasks (dicts, picklable) of every (scenario, model, seed), in scenario -> model -> seed order (so that
    parallel runs of one model differ by seed and later models reuse the cached pre-training)."""
    scenarios = [resolve_scenario(s) for s in spec.scenarios]
    labels = [s.label for s in scenarios]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise SpecError(f'Two scenarios are named {duplicates}: give the scenario YAML files different '
                         '`scenario: name:` values (or file names).')
    from recbole_tmcdr.config import default_raw_data_path
    overrides = absolute_path_overrides(spec.overrides)
    config_files = [os.path.abspath(f) for f in spec.config_files]
    config_files_sha = [file_sha(f) for f in config_files]
    # resolved here (workers run elsewhere); a scenario or config file that sets one of them wins
    # workers write no progress bars into their logs: the benchmark shows its own progress
    benchmark_defaults = {'cache_dir': cache_dir, 'raw_data_path': default_raw_data_path(), 'show_progress': False}
    explicit = dict(overrides)  # the user's settings win over every file, as --key=value does in a single run
    if spec.cache_dir:
        explicit['cache_dir'] = cache_dir
    if spec.kshot:
        explicit['kshot'] = list(spec.kshot)
    version = code_version()
    tasks = []
    for scenario in scenarios:
        base_config = {**defaults_unless_set(benchmark_defaults, [scenario.path()] + config_files), **explicit}
        for model in spec.models:
            full_space = model_search_space(model, spec.search_space)
            # a key the user fixed with an override is not searched
            space = {k: v for k, v in full_space.items() if k not in overrides} if spec.lr_search else {}
            trials = grid(space) or [{}]
            defaults = {k: resolved_value(model, k, overrides) for k in full_space if k not in space}
            valid_metric = str(resolved_value(model, 'valid_metric', overrides, 'NDCG@10')).lower()
            chash = config_hash(scenario, model, overrides, config_files_sha, trials, spec.kshot,
                                run_inputs(scenario, model, base_config['raw_data_path']))
            for seed in spec.seeds:
                tasks.append({
                    'run_id': f'{scenario.label}/{model}/seed{seed}',
                    'scenario': scenario.label, 'scenario_source': scenario.source(),
                    'run_kwargs': {'dataset': scenario.run_kwargs()['dataset'],
                                   'config_file_list': scenario.run_kwargs()['config_file_list'] + config_files},
                    'model': model, 'imports': list(spec.imports), 'seed': int(seed), 'trials': trials,
                    'defaults': defaults,
                    'search_space': space, 'lr_search': bool(spec.lr_search), 'valid_metric': valid_metric,
                    'overrides': overrides, 'base_config': base_config, 'kshot': spec.kshot,
                    'config_hash': chash, 'code_version': version,
                    'run_dir': os.path.join(out_dir, 'runs', scenario.label, model, f'seed{seed}'),
                    'threads': None,
                })
    return tasks


# ----- one run (executed in a worker)
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


def _floats(metrics):
    return {str(k): float(v) for k, v in (metrics or {}).items()}


def _better(score, best, bigger):
    if best is None:
        return True
    return score > best if bigger else score < best


def run_one(task, progress=None):
    """Run the trials of one (scenario, model, seed) and return its ``results.jsonl`` record."""
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


# ----- progress display (main process)
class ProgressDisplay:
    """An overall bar (runs done / total) and one bar per active run (trials of its search)."""

    def __init__(self, total, done, slots, enabled=None):
        self.enabled = enabled
        self.overall = tqdm(total=total, initial=done, desc='benchmark', unit='run', position=0,
                            dynamic_ncols=True, disable=None if enabled is None else not enabled)
        self.slots = list(range(1, max(1, slots) + 1))
        self.bars = {}

    def event(self, event):
        run_id = event.get('run_id')
        if event['event'] == 'start':
            position = self.slots.pop(0) if self.slots else len(self.bars) + 1
            bar = tqdm(total=event['n_trials'], desc=run_id, unit='trial', position=position, leave=False,
                       dynamic_ncols=True, disable=self.overall.disable)
            self.bars[run_id] = (bar, position)
        elif run_id in self.bars:
            bar = self.bars[run_id][0]
            if event['event'] == 'trial_start':
                params = ', '.join(f'{k}={v}' for k, v in event['params'].items())
                bar.set_postfix_str(f"trial {event['index'] + 1}{': ' + params if params else ''}")
            elif event['event'] == 'trial_end':
                bar.update(1)

    def finish(self, run_id, message):
        if run_id in self.bars:
            bar, position = self.bars.pop(run_id)
            bar.close()
            self.slots.insert(0, position)
            self.slots.sort()
        self.overall.update(1)
        tqdm.write(message, file=sys.stderr)

    def close(self):
        for bar, _ in self.bars.values():
            bar.close()
        self.overall.close()


# ----- units of work: runs that share pre-trained base models run one after the other in one worker
def pretrain_share_key(task):
    """Runs with the same key pre-train the same cached base models (same scenario, seed, base model and
    pre-training settings, e.g. EMCDR_MF and TMCDR_MF): running them in one worker, one after the other, makes
    the later ones reuse the cache instead of pre-training the same thing concurrently. None = not shared."""
    try:
        from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
        from recbole_tmcdr.registry import MODELS
        from recbole_tmcdr.trainer.cold_start_trainer import PRETRAIN_KEY_FIELDS
        if not issubclass(MODELS.get(task['model']), CrossDomainMappingRecommender):
            return None
    except Exception:  # noqa: BLE001 - only an optimisation
        return None
    from recbole_tmcdr.benchmark.spec import merged_model_yaml
    merged, overrides = merged_model_yaml(task['model']), task['overrides']
    value = lambda key: overrides.get(key, merged.get(key))  # noqa: E731
    phases = [str(p) for p in value('train_epochs') or [] if str(p).split(':')[0].upper() in ('SOURCE', 'TARGET')]
    if not phases:
        return None
    fields = {key: value(key) for key in PRETRAIN_KEY_FIELDS if key != 'seed'}
    return json.dumps([task['scenario'], task['seed'], phases, fields], sort_keys=True, default=str)


def group_tasks(tasks):
    """Units of work (lists of tasks), in the order of their first task."""
    groups = {}
    for index, task in enumerate(tasks):
        key = pretrain_share_key(task)
        groups.setdefault(key if key is not None else ('alone', index), []).append(task)
    return list(groups.values())


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


class Dispatcher:
    """Main-process side of the events: outcomes to ``on_done`` (once per run), the rest to the display."""

    def __init__(self, tasks, display, on_done):
        self.tasks = {task['run_id']: task for task in tasks}
        self.display, self.on_done, self.handled = display, on_done, set()

    def __call__(self, event):
        kind = event.get('event')
        if kind == 'record':
            self.outcome(event['run_id'], event['record'], None, None)
        elif kind == 'error':
            self.outcome(event['run_id'], None, event['error'], event.get('traceback'))
        else:
            self.display.event(event)

    def outcome(self, run_id, record, error, trace):
        if run_id in self.handled or run_id not in self.tasks:
            return
        self.on_done(self.tasks[run_id], record, error, trace)
        self.handled.add(run_id)

    def group_finished(self, group, outcomes=None, error=None, trace=None):
        """After a unit of work: outcomes whose event was lost, and runs of a crashed worker."""
        for run_id, record, run_error, run_trace in outcomes or []:
            self.outcome(run_id, record, run_error, run_trace)
        for task in group:
            self.outcome(task['run_id'], None, error or 'the worker ended without a result', trace)


# ----- executors
def _run_serial(groups, run_fn, dispatch):
    for group in groups:
        dispatch.group_finished(group, run_group(group, dispatch, run_fn))


def _drain(queue, dispatch):
    import queue as queue_module
    while True:
        try:
            event = queue.get_nowait()
        except (queue_module.Empty, EOFError, OSError):
            return
        except Exception as error:  # noqa: BLE001 - ray.util.queue.Empty is not queue.Empty
            if type(error).__name__ == 'Empty':
                return
            raise
        dispatch(event)


def _error_text(error):
    return f'{type(error).__name__}: {error}', ''.join(traceback.format_exception(error))


def _run_processes(groups, run_fn, jobs, dispatch):
    """One fresh spawned process per unit of work (``max_tasks_per_child=1``): RecBole's global state (logging,
    seeds, threads) never leaks from one run to the next, and a crash ends only its own unit."""
    context = multiprocessing.get_context('spawn')
    with context.Manager() as manager:
        queue = manager.Queue()
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, max_tasks_per_child=1)
        try:
            futures = {pool.submit(run_group, group, queue, run_fn): group for group in groups}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                _drain(queue, dispatch)
                for future in done:
                    try:
                        outcomes = future.result()
                    except Exception as error:  # noqa: BLE001 - e.g. BrokenProcessPool (worker killed)
                        dispatch.group_finished(futures[future], None, *_error_text(error))
                    else:
                        dispatch.group_finished(futures[future], outcomes)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def import_ray():
    try:
        import ray
    except ImportError:
        raise SystemExit('--ray-address needs Ray, an optional dependency: pip install ray '
                         '(or pip install "recbole-tmcdr[ray]").') from None
    return ray


def _run_ray(groups, run_fn, address, cpus_per_task, dispatch):
    """Units of work as Ray tasks (``num_cpus=cpus_per_task``); progress and outcomes come back through a
    ``ray.util.queue.Queue``. On a multi-node cluster the output and cache directories must be on a shared file
    system (runs write their logs and the embedding cache there) and the plugin installed on every node."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address in ('', 'local', 'new') else address, log_to_driver=False,
                 include_dashboard=False)
    try:
        from ray.util.queue import Queue
        queue = Queue()
        remote = ray.remote(num_cpus=cpus_per_task, max_retries=0)(run_group)
        refs = {remote.remote(group, queue, run_fn): group for group in groups}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.25)
                _drain(queue, dispatch)
                for ref in ready:
                    group = refs.pop(ref)
                    try:
                        outcomes = ray.get(ref)
                    except Exception as error:  # noqa: BLE001
                        dispatch.group_finished(group, None, *_error_text(error))
                    else:
                        dispatch.group_finished(group, outcomes)
        except BaseException:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()


# ----- the benchmark
def _summary_line(record):
    test = record.get('cold_test') or {}
    chosen = ', '.join(f'{k}={v}' for k, v in (record.get('chosen') or {}).items())
    metrics = '  '.join(f'{name}={test[key]:.4f}' for name, key in (('AUC', 'uauc'), ('NDCG@10', 'ndcg@10'))
                        if test.get(key) is not None)
    return (f"done {record['scenario']}/{record['model']}/seed{record['seed']}: test {metrics}"
            f"{'  [' + chosen + ']' if chosen else ''}  ({record['timings']['total']:.0f}s)")


def run_benchmark(spec: BenchmarkSpec, run_fn=run_one, report=True, progress=None, dry_run=False, command=None,
                  report_only=False):
    """Run (or resume) a benchmark; returns ``{'out', 'planned', 'skipped', 'finished', 'failed', 'report'}``.

    ``run_fn(task, progress)`` runs one (scenario, model, seed) and returns its record (default
    :func:`run_one`; tests inject a fake; for worker processes and Ray it must be a module-level function).
    ``progress``: True/False forces the bars on/off (None = on a TTY). ``command``: the command line, recorded
    in ``spec.yaml`` and printed by the report. ``report_only``: run nothing, report the finished runs.
    """
    spec = spec.validate()
    from recbole_tmcdr.config import default_cache_dir
    out_dir = os.path.abspath(os.path.expanduser(spec.out))
    cache_dir = os.path.abspath(os.path.expanduser(spec.cache_dir or spec.overrides.get('cache_dir')
                                                   or default_cache_dir()))
    os.makedirs(out_dir, exist_ok=True)
    results_path = os.path.join(out_dir, results_io.RESULTS_FILE)

    tasks = plan(spec, out_dir, cache_dir)
    moved = results_io.repair_truncated_tail(results_path) if not dry_run else b''
    if moved:
        import warnings
        warnings.warn(f'{results_path}: a truncated last line ({len(moved)} bytes, an interrupted write) was moved '
                      'aside to results.jsonl.truncated-*; that run will be redone.',
                      results_io.ResultsFileWarning, stacklevel=2)
    latest = {results_io.run_key(r): r.get('config_hash')
              for r in results_io.keyed_records(results_io.load_records(results_path))}
    todo, skipped, stale = [], [], []
    for task in tasks:
        key = (task['scenario'], task['model'], task['seed'])
        if not spec.force and latest.get(key) == task['config_hash']:
            skipped.append(task)
        else:
            if key in latest and not spec.force:
                # the model's YAML, the raw data, the code or the spec changed since that run: its result is stale
                log.info('%s: inputs changed (hash %s -> %s), re-running', task['run_id'], latest[key],
                         task['config_hash'])
                stale.append(key)
            todo.append(task)

    groups = group_tasks(todo)
    local_jobs = max(1, min(int(spec.jobs or default_jobs()), len(groups) or 1))
    threads = spec.threads or (1 if spec.ray_address else max(1, (os.cpu_count() or 1) // local_jobs))
    for task in todo:
        task['threads'] = threads
    summary = {'out': out_dir, 'planned': tasks, 'skipped': skipped, 'todo': todo, 'stale': stale, 'finished': [],
               'failed': []}
    print(f'benchmark: {len(tasks)} runs ({len(skipped)} already done, '
          + (f'{len(stale)} stale (inputs changed), ' if stale else '')
          + (f'{len(todo)} missing; --report-only: none runs' if report_only else f'{len(todo)} to run')
          + f') -> {out_dir}'
          + (f'  [{"ray " + spec.ray_address if spec.ray_address else f"{local_jobs} job(s)"} x {threads} '
             f'thread(s), cache {cache_dir}]' if todo and not report_only else ''), file=sys.stderr)
    if dry_run:
        for task in tasks:
            state = 'done' if task in skipped else 'todo'
            print(f"  {state}  {task['run_id']}  ({len(task['trials'])} trial(s))", file=sys.stderr)
        return summary
    _write_spec(out_dir, spec, cache_dir, command)

    display = ProgressDisplay(total=len(tasks), done=len(skipped), slots=local_jobs, enabled=progress)

    def on_done(task, record, error, trace):
        if error is None:
            results_io.append_record(results_path, record)
            summary['finished'].append(record)
            display.finish(task['run_id'], _summary_line(record))
        else:
            results_io.append_record(os.path.join(out_dir, results_io.ERRORS_FILE), {
                'scenario': task['scenario'], 'model': task['model'], 'seed': task['seed'],
                'config_hash': task['config_hash'], 'error': error, 'traceback': trace,
                'at': datetime.now(timezone.utc).isoformat(timespec='seconds')})
            summary['failed'].append((task, error))
            display.finish(task['run_id'], f"FAILED {task['run_id']}: {error}")

    dispatch = Dispatcher(todo, display, on_done)
    try:
        if report_only or not groups:
            pass  # --report-only: report what is finished; its coverage section names the rest
        elif spec.ray_address:
            _run_ray(groups, run_fn, spec.ray_address, threads, dispatch)
        elif local_jobs == 1:
            _run_serial(groups, run_fn, dispatch)
        else:
            _run_processes(groups, run_fn, local_jobs, dispatch)
    finally:
        display.close()

    if report:
        from recbole_tmcdr.benchmark.report import write_report
        redone = {results_io.run_key(r) for r in summary['finished']}
        summary['report'] = write_report(out_dir, scenario_order=[t['scenario'] for t in tasks],
                                         model_order=list(spec.models),
                                         stale=[key for key in stale if key not in redone],
                                         planned={(t['scenario'], t['model'], t['seed']) for t in tasks})
    return summary


def _write_spec(out_dir, spec, cache_dir, command=None):
    """The resolved spec of the latest invocation and its command line, for the record and the report
    (``<out>/spec.yaml``)."""
    import yaml
    content = spec.as_dict()
    content['command'] = command
    resolved = [resolve_scenario(s) for s in spec.scenarios]
    content['scenarios'] = [s.source() for s in resolved]
    content['scenario_labels'] = [s.label for s in resolved]
    content['cache_dir'] = cache_dir
    content['out'] = out_dir
    with open(os.path.join(out_dir, 'spec.yaml'), 'w', encoding='utf-8') as f:
        yaml.safe_dump(results_io.to_jsonable(content), f, sort_keys=False)
