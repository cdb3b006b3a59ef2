"""``python -m recbole_tmcdr.benchmark --scenarios ml_genre douban_music_book --models EMCDR_MF TMCDR_MF
--seeds 0 1 2 [--spec spec.yaml] [--out DIR] [--jobs N] [--ray-address ADDR] [--lr-search/--no-lr-search]
[--kshot 0 1 3 5 10] [--progress/--no-progress] [--status-interval SECONDS] [--key=value ...]``"""

import argparse
import shlex
import sys

from recbole_tmcdr.benchmark.display import DEFAULT_STATUS_INTERVAL
from recbole_tmcdr.benchmark.spec import BenchmarkSpec, SpecError
from recbole_tmcdr.cli import add_import_argument, parse_overrides

EPILOG = """\
Every (scenario, model, seed) is one run: the grid of the model's `benchmark_search_space` (its YAML; default
learning_rate in {0.001, 0.002, 0.005, 0.01}, the paper's) is tried and the trial with the best cold VALIDATION
score is kept; its cold TEST metrics go to OUT/results.jsonl (one line per run). Finished runs with the same
configuration are skipped when the command is run again (resume). At the end OUT/table.md, table.csv and the
figures (differences.png, figure1.png, cold_to_warm.png, training.png: those with something to show) are written and
the table is printed.

Any other parameter: --key=value (YAML value, e.g. --embedding_size=64 '--train_epochs=["SOURCE:5","TARGET:5","OVERLAP:20"]'),
given to every run. A key set this way, or in a --config-files file, is not searched.
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog='python -m recbole_tmcdr.benchmark', allow_abbrev=False,
        description='Benchmark cold-start cross-domain models over scenarios and seeds, with hyperparameter '
                    'search on cold validation users.',
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--spec', help='YAML spec file (fields: scenarios, models, seeds, overrides, jobs, '
                                       'lr_search, search_space, kshot, ...); the command line overrides it')
    parser.add_argument('--scenarios', nargs='+', metavar='NAME_OR_YAML',
                        help='dataset_configs names (e.g. ml_genre) or paths to scenario YAML files')
    parser.add_argument('--models', nargs='+', metavar='MODEL', help='registered model names')
    add_import_argument(parser)
    parser.add_argument('--seeds', nargs='+', type=int, metavar='SEED', help='seeds (split + init); default 0 1 2')
    parser.add_argument('--out', help='output directory (default runs/benchmark)')
    parser.add_argument('--jobs', type=int, help='local worker processes (default min(2, cpu_count))')
    parser.add_argument('--threads', type=int,
                        help='torch threads per run (default cpu_count // jobs; with Ray: CPUs per task, default 1)')
    parser.add_argument('--ray-address', dest='ray_address',
                        help="run as Ray tasks on this cluster ('auto', 'ray://host:10001', or 'local' to start one)")
    parser.add_argument('--lr-search', dest='lr_search', action=argparse.BooleanOptionalAction, default=None,
                        help='search the models\' hyperparameter grids (default) or use their defaults')
    parser.add_argument('--kshot', nargs='*', type=int, metavar='K',
                        help='K-shot evaluation of cold test users (e.g. 0 1 3 5 10)')
    parser.add_argument('--cache-dir', dest='cache_dir',
                        help='cache of prepared scenarios and pre-trained embeddings, shared by all runs '
                             '(default $RECBOLE_TMCDR_CACHE or ~/.cache/recbole_tmcdr)')
    parser.add_argument('--config-files', dest='config_files', nargs='*',
                        help='extra YAML config files for every run (after the scenario)')
    parser.add_argument('--force', action='store_true', default=None, help='re-run runs that are already done')
    parser.add_argument('--dry-run', action='store_true', help='list the runs (done / to do) and stop')
    parser.add_argument('--no-report', action='store_true', help="don't write/print the report at the end")
    parser.add_argument('--report-only', dest='report_only', action='store_true',
                        help='run nothing: write the report of the runs finished so far (its coverage section '
                             'lists the missing ones; the same command without this flag completes them)')
    parser.add_argument('--progress', action=argparse.BooleanOptionalAction, default=None,
                        help='--progress: a progress bar (runs; each running trial\'s phase and epoch) even when '
                             'the output is not a terminal; --no-progress: neither bar nor status lines. Default: '
                             'the bar on a terminal, else a one-line status every --status-interval seconds')
    parser.add_argument('--status-interval', dest='status_interval', type=float, default=DEFAULT_STATUS_INTERVAL,
                        metavar='SECONDS', help='seconds between two status lines when the output is not a '
                                                f'terminal (default {DEFAULT_STATUS_INTERVAL}; 0: none)')
    return parser


def spec_from_args(args, overrides):
    spec = BenchmarkSpec.from_file(args.spec) if args.spec else BenchmarkSpec()
    return spec.updated(scenarios=args.scenarios, models=args.models, seeds=args.seeds, out=args.out,
                        jobs=args.jobs, threads=args.threads, ray_address=args.ray_address, lr_search=args.lr_search,
                        kshot=args.kshot, cache_dir=args.cache_dir, config_files=args.config_files,
                        force=args.force, overrides=overrides, imports=args.imports)


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = parse_overrides(extra, parser)
    if args.status_interval < 0:
        parser.error(f'--status-interval must be >= 0 seconds. Got {args.status_interval}.')
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != '--report-only']
    command = ' '.join(['python -m recbole_tmcdr.benchmark', *map(shlex.quote, given)])  # what completes the runs
    sys.argv = sys.argv[:1]  # CDRConfig reads --key=value from sys.argv: leave it nothing to re-interpret
    try:
        spec = spec_from_args(args, overrides).validate()
    except SpecError as error:
        parser.error(str(error))

    from recbole_tmcdr.benchmark.runner import run_benchmark
    try:
        summary = run_benchmark(spec, report=not args.no_report, progress=args.progress, dry_run=args.dry_run,
                                command=command, report_only=args.report_only,
                                status_interval=args.status_interval)
    except SpecError as error:
        parser.error(str(error))
    except FileNotFoundError as error:  # nothing to report (no finished run, or every one is stale)
        parser.exit(2, f'{parser.prog}: error: {error}\n')
    if args.dry_run:
        return 0
    report = summary.get('report')
    if report:
        print(report['markdown'])
        from recbole_tmcdr.benchmark.report import written_files
        print(f"written: {', '.join(written_files(report))}", file=sys.stderr)
    if summary['failed']:
        print(f"{len(summary['failed'])} run(s) failed: see {summary['out']}/errors.jsonl and the runs' "
              'console.log', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
