"""Figure 7: peak RSS of the README's main command (``make demo``) on ml_genre.

The demo command is ``python -m recbole_tmcdr.benchmark --scenarios ml_genre --models EMCDR_MF TMCDR_MF
--seeds 2022 --no-lr-search --out runs/demo``; while that module does not exist, the same work is the two
single-model runs ``python -m recbole_tmcdr --model EMCDR_MF --dataset ml_genre`` and ``--model TMCDR_MF``.
Each command runs as a child process with a fresh cache (scenario conversion and pre-training included);
its peak is the larger of the sampled SUM of RSS over its process tree (the demo runs its models in worker
processes) and ``wait4``'s ``ru_maxrss`` (exact peak of the largest single process). The figure is the
largest peak over the commands.
"""

import importlib.util
import json

from speed.common import Figure, child_env, python, run_measured

LIMIT_MB = 3 * 1024
DEMO_MODELS = ('EMCDR_MF', 'TMCDR_MF')


def commands(ctx):
    if ctx.quick:
        overrides = [f'--{k}={json.dumps(v)}' for k, v in ctx.setup.overrides.items()]
        return [[python(), '-m', 'recbole_tmcdr', '--model', 'TMCDR_MF', '--config_files', *ctx.setup.config_files,
                 '--no_save', *overrides]]
    if importlib.util.find_spec('recbole_tmcdr.benchmark') is not None:
        return [[python(), '-m', 'recbole_tmcdr.benchmark', '--scenarios', 'ml_genre', '--models', *DEMO_MODELS,
                 '--seeds', '2022', '--no-lr-search', '--out', 'runs/demo']]
    return [[python(), '-m', 'recbole_tmcdr', '--model', model, '--dataset', 'ml_genre'] for model in DEMO_MODELS]


def run(ctx):
    workdir = ctx.workdir / 'memory'
    workdir.mkdir(parents=True, exist_ok=True)
    env = child_env(ctx.threads, RECBOLE_TMCDR_CACHE=workdir / 'cache')
    runs = []
    for i, cmd in enumerate(commands(ctx)):
        log = workdir / f'command{i}.log'
        code, wall, memory = run_measured(cmd, log, env=env, cwd=workdir)
        shown = ' '.join(c if c != python() else 'python' for c in cmd)
        if code != 0:
            raise RuntimeError(f'{shown} failed (exit {code}):\n{log.read_text()[-3000:]}')
        runs.append({'command': shown, 'peak_rss_mb': memory['tree_peak_mb'],
                     'largest_single_process_mb': memory['max_process_mb'], 'wall_s': round(wall, 1)})
    peak = max(r['peak_rss_mb'] for r in runs)
    return [Figure('7', 'peak RSS of the demo command (ml_genre, EMCDR_MF + TMCDR_MF)' if not ctx.quick else
                   'peak RSS of `python -m recbole_tmcdr` (tiny scenario)', peak / 1024, ' GB', '< 3 GB',
                   peak < LIMIT_MB, {'runs': runs})]
