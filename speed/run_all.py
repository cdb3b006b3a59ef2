"""Run every speed figure, print one table and append it to speed/RESULTS.md.

    python speed/run_all.py            # the real figures (Douban music -> book, embedding 256; ~15-25 min,
                                       # and ~20 min more for figure 9's 1M interactions per domain)
    python speed/run_all.py --quick    # tiny synthetic sizes: a smoke run of every code path (~40 s)
    python speed/run_all.py --only 1 2 # some figures only

Every figure is a ratio (or a bound) measured side by side in this run; see each ``bench_*.py``.
Both sides of a ratio use the same number of intra-op threads (``--threads``, default 1: the figures are
then least disturbed by other processes on a shared machine).
"""

import argparse
import importlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speed.common import RESULTS_FILE, Figure, Setup, machine_description, set_threads  # noqa: E402

# figure number -> module, or module:function[:argument] (default function: run), run in this order
FIGURES = {
    '1': 'bench_meta_step',
    '2': 'bench_vectorisation',
    '3': 'bench_transfer',
    '4': 'bench_evaluation',
    '5': 'bench_end_to_end',
    '6': 'bench_scaling',
    '7': 'bench_memory',
    '8': 'bench_joint',
    '8b': 'bench_joint:run_amazon:8b',
    '8c': 'bench_joint:run_amazon:8c',
    '8d': 'bench_joint:run_amazon:8d',
    '8e': 'bench_joint:run_amazon:8e',
    '9': 'bench_scale',
    '10': 'bench_propagation',
    '11': 'bench_table_time',
}


class Context:
    """What the figures share: settings, a work directory, and the pipelines (built once)."""

    def __init__(self, quick, threads, workdir):
        self.quick = quick
        self.threads = threads
        self.workdir = Path(workdir)
        self.setup = Setup(quick, self.workdir)
        self._cache = {}

    def rounds(self, full_rounds):
        return 2 if self.quick else full_rounds

    def once(self, key, build):
        """``build()``, made once per key in this run."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def tmcdr_pipeline(self, **overrides):
        key = ('TMCDR_MF', tuple(sorted(overrides.items())))
        return self.once(key, lambda: self.setup.pipeline('TMCDR_MF', **overrides))

    def emcdr_pipeline(self, **overrides):
        key = ('EMCDR_MF', tuple(sorted(overrides.items())))
        return self.once(key, lambda: self.setup.pipeline('EMCDR_MF', **overrides))

    def recbole_bpr(self, plugin_config):
        from speed.recbole_reference import RecBoleBPR
        return self.once('RecBoleBPR', lambda: RecBoleBPR(plugin_config, self.workdir))


def format_table(figures):
    header = '| # | figure | measured | target | result |\n|---|---|---|---|---|\n'
    return header + ''.join(f'| {f.key} | {f.name} | {f.measured()} | {f.target} | {f.verdict()} |\n'
                            for f in figures)


def format_details(figures):
    lines, previous = [], None
    for f in figures:
        if f.details and f.details != previous:  # rows of one figure share their measurements
            lines.append(f'- **{f.key}**: `{json.dumps(f.details, default=str)}`')
        previous = f.details
    return '\n'.join(lines) + '\n'


def report(figures, machine, command, elapsed, setup_text, only=None):
    machine_text = '; '.join(f'{k}: {v}' for k, v in machine.items())
    title = 'quick smoke run' if '--quick' in command else f"figures {', '.join(only)}" if only else 'full run'
    return (f"\n## {machine['date']}: {title}\n\n"
            f'Command: `{command}` ({elapsed:.0f} s). Data: {setup_text}, unless a figure names another scenario '
            f'(its details say which).\n\n'
            f'Machine: {machine_text}\n\n'
            f'{format_table(figures)}\n'
            f'<details><summary>measurements behind each figure</summary>\n\n{format_details(figures)}\n</details>\n')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='tiny synthetic sizes (smoke run)')
    parser.add_argument('--only', nargs='*', choices=sorted(FIGURES), help='run only these figures')
    parser.add_argument('--threads', type=int, default=1, help='intra-op threads, both sides of every ratio')
    parser.add_argument('--results', default=str(RESULTS_FILE), help='markdown file the table is appended to')
    parser.add_argument('--no-append', action='store_true', help='print only, do not write the results file')
    parser.add_argument('--keep-workdir', action='store_true', help='keep the temporary work directory')
    args = parser.parse_args(argv)
    command = 'python speed/run_all.py' + ''.join(f' {shlex.quote(a)}' for a in (argv if argv is not None
                                                                                         else sys.argv[1:]))

    sys.argv = sys.argv[:1]  # RecBole's Config also parses the command line: leave it nothing to misread
    set_threads(args.threads)
    import recbole_tmcdr  # noqa: F401  (numpy 2 / torch compat fixes before anything of RecBole's)

    workdir = Path(tempfile.mkdtemp(prefix='recbole_tmcdr_bench_'))
    previous_cwd = os.getcwd()
    os.chdir(workdir)  # RecBole writes log/, log_tensorboard/ and saved/ into the working directory
    if args.quick:
        os.environ['RECBOLE_TMCDR_CACHE'] = str(workdir / 'cache')
    machine = machine_description(args.threads)
    ctx = Context(args.quick, args.threads, workdir)
    start = time.perf_counter()
    figures = []
    try:
        for number in (args.only or FIGURES):
            module_name, _, target = FIGURES[number].partition(':')
            function, *arguments = target.split(':')
            module = importlib.import_module(f'speed.{module_name}')
            t0 = time.perf_counter()
            print(f'[figure {number}] {FIGURES[number]} ...', flush=True)
            try:
                rows = getattr(module, function or 'run')(ctx, *arguments)
            except Exception as error:  # one broken figure must not hide the others
                traceback.print_exc()
                rows = [Figure(number, f'{FIGURES[number]}: ERROR {type(error).__name__}: {error}'[:200], None, '',
                               'runs', False)]
            for row in rows:
                row.details = dict(row.details, seconds_for_figure=round(time.perf_counter() - t0, 1))
                print(f'  {row.key}: {row.measured()} (target {row.target}) {row.verdict()}', flush=True)
            figures.extend(rows)
    finally:
        os.chdir(previous_cwd)
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - start
    text = report(figures, machine, command, elapsed, ctx.setup.describe(), args.only)
    print(text)
    if not args.no_append:
        results = Path(args.results)
        if not results.exists():
            results.write_text('# Benchmark results\n\nAppended by `python speed/run_all.py` '
                               '(see speed/run_all.py and the bench_*.py files for what each figure measures).\n')
        with open(results, 'a') as f:
            f.write(text)
    return figures


if __name__ == '__main__':
    main()
