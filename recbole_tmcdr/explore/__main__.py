"""``python -m recbole_tmcdr.explore --scenarios ml_genre [...] --out DIR [--config_files a.yaml] [--key=value]``."""

import argparse
import os
import shlex
import sys
from time import perf_counter

import torch

from recbole_tmcdr.explore.policies import POLICIES


def build_parser():
    policies = '\n'.join(f'  {name:20s} {policy.description}' for name, policy in POLICIES.items())
    parser = argparse.ArgumentParser(
        prog='python -m recbole_tmcdr.explore',
        description='Simulate exploration policies on the cold test users of cold-start scenarios (offline: rewards '
                    'are the users\' held-out target interactions) and write RESULTS.md and regret figures.',
        epilog=f'policies:\n{policies}\nSettings: properties/explore.yaml (every key, annotated); override with '
               '--config_files or --key=value (YAML values, e.g. --seeds=[0,1,2] --rounds=20).',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scenarios', nargs='+', required=True,
                        help='dataset_configs names (ml_genre, douban_music_book, ...) or scenario YAML files')
    parser.add_argument('--out', required=True, help='output directory (run files, RESULTS.md, figures)')
    parser.add_argument('--config_files', nargs='*', default=[], help='YAML files of exploration settings')
    parser.add_argument('--cache_dir', default=None, help='trained models and data (default: cache_dir / '
                        '$RECBOLE_TMCDR_CACHE / ~/.cache/recbole_tmcdr)')
    parser.add_argument('--force', action='store_true', help='redo the (scenario, seed) runs already in --out')
    parser.add_argument('--report-only', action='store_true', help='only rewrite the report from the run files')
    parser.add_argument('--verbose', action='store_true', help="show the models' training logs")
    parser.add_argument('--debug', action='store_true', help='show the traceback of a settings or data error')
    return parser


def progress(message):
    print(f'[explore] {message}', flush=True)


def run(args, overrides, command):
    from recbole_tmcdr.benchmark.spec import resolve_scenario
    from recbole_tmcdr.explore.figures import plot_regret
    from recbole_tmcdr.explore.report import Aggregate, read_runs, runs_by_scenario, write_report
    from recbole_tmcdr.explore.run import run_file, run_one
    from recbole_tmcdr.explore.settings import load_settings

    settings = load_settings(args.config_files, overrides)
    if not args.verbose:
        settings['model_settings'] = {'state': 'WARNING', **settings['model_settings']}
    torch.set_num_threads(settings['threads'])
    scenarios = [resolve_scenario(value) for value in args.scenarios]
    if not args.report_only:
        for scenario in scenarios:
            for seed in settings['seeds']:
                start, path = perf_counter(), run_file(args.out, scenario, seed)
                written = path.stat().st_mtime_ns if path.is_file() else None
                progress(f'{scenario.label} seed {seed} ...')
                run_one(scenario, seed, settings, args.out, command=command, force=args.force, cache_dir=args.cache_dir)
                kept = written is not None and path.stat().st_mtime_ns == written
                progress(f'{scenario.label} seed {seed}: ' + (f'kept {path} (inputs unchanged)' if kept else
                                                              f'done in {perf_counter() - start:.0f} s'))
    runs, stale = read_runs(args.out, settings)
    if not runs:
        raise FileNotFoundError(f'No run in {args.out} was made with these settings: nothing to report.')
    order = [scenario.label for scenario in scenarios]
    figures = {}
    for label, scenario_runs in runs_by_scenario(runs, order).items():
        name = f'regret_{label}.png'
        if plot_regret(Aggregate(scenario_runs), os.path.join(args.out, name), f'{label}: cumulative regret of cold '
                       f'test users (mean, 95% CI over {len(scenario_runs)} seeds)'):
            figures[label] = name
    path = write_report(args.out, settings, runs, stale, figures, command=command, order=order)
    progress(f'wrote {path} and {", ".join(figures.values()) or "no figure"}')
    return runs


def main(argv=None):
    from recbole_tmcdr.__main__ import user_errors
    from recbole_tmcdr.benchmark.spec import SpecError
    from recbole_tmcdr.cli import parse

    parser = build_parser()
    command = 'python -m recbole_tmcdr.explore ' + ' '.join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    args, overrides = parse(parser, argv)
    try:
        return run(args, overrides, command)
    except (*user_errors(), SpecError, FileNotFoundError) as error:
        if args.debug or os.environ.get('RECBOLE_TMCDR_DEBUG'):
            raise
        parser.exit(2, f'explore: error: {error}\n')


if __name__ == '__main__':
    main()
