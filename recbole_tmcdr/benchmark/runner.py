"""Run every (scenario, model, seed) of a spec, with its hyperparameter search, and record one line each.

* One RUN = one (scenario, model, seed): its trials (the grid of the model's search space) run one after
  the other in the same process, so the first trial pre-trains the base models and the others reuse the
  cached embeddings. The trial with the best cold VALIDATION score (``best_valid_score``, RecBole's
  ``valid_metric``) is chosen; its cold-test metrics are the result. Test metrics of the other trials are
  never recorded.
* Runs execute in the current process (``jobs == 1``), in local worker processes
  (:class:`concurrent.futures.ProcessPoolExecutor`, spawn, one fresh process per unit of work), or as Ray
  tasks (``ray_address``), all through one executor loop (:mod:`.executor`); what a worker does is in
  :mod:`.worker`, what the console shows meanwhile in :mod:`.display`. Each run works in
  ``<out>/runs/<scenario>/<model>/seed<k>/`` (RecBole's ``log/``, ``saved/``; the run's console output goes to
  ``console.log`` there).
* Only the main process writes ``results.jsonl`` (see :mod:`recbole_tmcdr.benchmark.results`). A run whose
  last line in it has the same ``config_hash`` is skipped (resume); a changed config re-runs it.
"""

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timezone

from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark.display import DEFAULT_STATUS_INTERVAL, ProgressDisplay
from recbole_tmcdr.benchmark.executor import Dispatcher, execute, open_executor
from recbole_tmcdr.benchmark.search_space import grid, merged_model_yaml, model_search_space, resolved_value
from recbole_tmcdr.benchmark.inputs import code_and_yaml_sha, code_sha, config_hash, named_file_contents, run_inputs
from recbole_tmcdr.benchmark.spec import (
    BenchmarkSpec, SpecError, absolute_path_overrides, defaults_unless_set, file_sha, resolve_scenario, set_in_files,
)
from recbole_tmcdr.benchmark.training_units import inference_keys, training_batches

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
    code_sha(fresh=True)  # the files as they are now (this process may have read them before an edit)
    fixed_by_user = set(overrides) | set(set_in_files(config_files))  # not searched, in any scenario
    tasks = []
    for scenario in scenarios:
        run_files = [scenario.path()] + config_files  # the dataset's YAML layer, then the user's files
        base_config = {**defaults_unless_set(benchmark_defaults, run_files), **explicit}
        settings = {**set_in_files(run_files), **overrides}  # what outranks the model YAML, as RecBole merges it
        for model in (m for m in spec.models if spec.runs_on(m, scenario.label)):
            full_space = model_search_space(model, spec.search_space)
            # a key the user fixed (an override or one of the spec's config files) is not searched
            space = {k: v for k, v in full_space.items() if k not in fixed_by_user} if spec.lr_search else {}
            trials = grid(space) or [{}]
            defaults = {k: resolved_value(model, k, settings) for k in full_space if k not in space}
            valid_metric = str(resolved_value(model, 'valid_metric', settings, 'NDCG@10')).lower()
            inputs = run_inputs(scenario, model, base_config['raw_data_path'], settings.get('scenario'))
            planned_inputs = code_and_yaml_sha(model)  # what a worker checks before and after the run
            named_files = named_file_contents(settings)  # the files the scenario, config files and overrides name
            if named_files:
                inputs['named_files'] = named_files
            chash = config_hash(scenario, model, overrides, config_files_sha, trials, spec.kshot, inputs)
            for seed in spec.seeds:
                tasks.append({
                    'run_id': f'{scenario.label}/{model}/seed{seed}',
                    'scenario': scenario.label, 'scenario_source': scenario.source(),
                    'run_kwargs': {'dataset': scenario.run_kwargs()['dataset'],
                                   'config_file_list': scenario.run_kwargs()['config_file_list'] + config_files},
                    'model': model, 'imports': list(spec.imports), 'seed': int(seed), 'trials': trials,
                    'defaults': defaults,
                    # the values of its inference keys, for a run that trains together with another model's
                    'inference_settings': {k: resolved_value(model, k, settings) for k in inference_keys(model)},
                    # a stored trained model is keyed by its own run's settings, for a router to reuse it: such a
                    # run trains each trial on its own
                    'share_training': not resolved_value(model, 'store_trained_models', settings),
                    'search_space': space, 'lr_search': bool(spec.lr_search), 'valid_metric': valid_metric,
                    'overrides': overrides, 'base_config': base_config, 'kshot': spec.kshot,
                    'config_hash': chash, 'code_version': version,
                    'planned_inputs': planned_inputs,  # worker.check_planned_inputs
                    'raw_data_missing': next((sha for sha in inputs['raw_data'] if sha.startswith('missing:')), None),
                    'run_dir': os.path.join(out_dir, 'runs', scenario.label, model, f'seed{seed}'),
                    'threads': None,
                })
    return tasks


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
    merged, overrides = merged_model_yaml(task['model']), task['overrides']
    value = lambda key: overrides.get(key, merged.get(key))  # noqa: E731
    phases = [str(p) for p in value('train_epochs') or [] if str(p).split(':')[0].upper() in ('SOURCE', 'TARGET')]
    if not phases:
        return None
    fields = {key: value(key) for key in PRETRAIN_KEY_FIELDS if key != 'seed'}
    return json.dumps([task['scenario'], task['seed'], phases, fields], sort_keys=True, default=str)


def group_tasks(tasks):
    """Units of work (lists of tasks), in the order of their first task; those of a model that reuses the single
    runs' trained models (a router: ``reuses_single_runs``) last, so that the runs it reuses are done by then."""
    groups = {}
    for index, task in enumerate(tasks):
        key = pretrain_share_key(task)
        groups.setdefault(key if key is not None else ('alone', index), []).append(task)
    return sorted(groups.values(), key=lambda group: reuses_single_runs(group[0]['model']))


def reuses_single_runs(model):
    from recbole_tmcdr.registry import MODELS
    return bool(getattr(MODELS.get(model), 'reuses_single_runs', False))


# ----- the benchmark
def _summary_line(record):
    test = record.get('cold_test') or {}
    chosen = ', '.join(f'{k}={v}' for k, v in (record.get('chosen') or {}).items())
    metrics = '  '.join(f'{name}={test[key]:.4f}' for name, key in (('AUC', 'uauc'), ('NDCG@10', 'ndcg@10'))
                        if test.get(key) is not None)
    routes = ' '.join(f'K={k}:{m}' for k, m in ((record.get('routing') or {}).get('choice') or {}).items())
    return (f"done {record['scenario']}/{record['model']}/seed{record['seed']}: test {metrics}"
            f"{'  [' + chosen + ']' if chosen else ''}{'  [routes ' + routes + ']' if routes else ''}"
            f"  ({record['timings']['total']:.0f}s)")


def run_benchmark(spec: BenchmarkSpec, run_fn=None, report=True, progress=None, dry_run=False, command=None,
                  report_only=False, status_interval=DEFAULT_STATUS_INTERVAL):
    """Run (or resume) a benchmark; returns ``{'out', 'planned', 'skipped', 'finished', 'failed', 'report'}``.

    ``run_fn(task, progress)``, if given, runs one (scenario, model, seed) and returns its record (tests inject a
    fake; for worker processes and Ray it must be a module-level function); by default runs that train alike
    train together (:func:`.worker.run_group`).
    ``progress``: True forces the progress bar, False shows neither bar nor status lines, None = the bar on a
    terminal, else a status line every ``status_interval`` seconds (see :mod:`.display`). ``command``: the
    command line, recorded in ``spec.yaml`` and printed by the report. ``report_only``: run nothing, report the
    finished runs.
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

    unreadable = sorted({task['raw_data_missing'] for task in tasks if task.get('raw_data_missing')
                         and (task['scenario'], task['model'], task['seed']) in stale})
    if unreadable:  # the runs' inputs cannot be compared: every finished run of such a scenario counts as stale
        print(f'benchmark: runs count as stale because their raw data cannot be read ({"; ".join(unreadable)}): '
              'set raw_data_path (or --raw_data_path=DIR in overrides) to the data they were made from.',
              file=sys.stderr)
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
        trained_with = {task['run_id']: batch[0]['run_id'] for group in groups
                        for batch in training_batches(group) for task in batch[1:]}
        for task in tasks:
            state = 'done' if task in skipped else 'todo'
            shared = f", trains with {trained_with[task['run_id']]}" if task['run_id'] in trained_with else ''
            print(f"  {state}  {task['run_id']}  ({len(task['trials'])} trial(s){shared})", file=sys.stderr)
        return summary
    _write_spec(out_dir, spec, cache_dir, command)

    display = ProgressDisplay(total=len(tasks), done=len(skipped), enabled=progress, status_interval=status_interval)

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
            display.finish(task['run_id'], f"FAILED {task['run_id']}: {error}", failed=True)

    try:
        if groups and not report_only:  # --report-only: report what is finished; its coverage names the rest
            with open_executor(local_jobs, spec.ray_address, cpus_per_task=threads) as (executor, channel):
                execute(groups, run_fn, executor, channel, Dispatcher(todo, display, on_done))
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
    if spec.narrowed_from:  # the spec's own models / scenarios, of which the command ran a subset
        content['narrowed_from'] = spec.narrowed_from
    resolved = [resolve_scenario(s) for s in spec.scenarios]
    content['scenarios'] = [s.source() for s in resolved]
    content['scenario_labels'] = [s.label for s in resolved]
    content['cache_dir'] = cache_dir
    content['out'] = out_dir
    with open(os.path.join(out_dir, 'spec.yaml'), 'w', encoding='utf-8') as f:
        yaml.safe_dump(results_io.to_jsonable(content), f, sort_keys=False)
