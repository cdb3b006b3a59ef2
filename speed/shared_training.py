"""Shared training in the benchmark (speed/README.md "Time to the paper-protocol table").

    python speed/shared_training.py run ml_genre TMCDR_MF,TMCDRAdapted_MF --out runs/shared
        # the pair's spec trials (results_paper_protocol.yaml, seed 0) trained together, then as separate runs
        # (one run at a time, in turn, each pre-training anew): wall time of each, and whether the records are equal
    python speed/shared_training.py project runs/paper_protocol/results.jsonl
        # the spec's run time from its records, and with SSCDR's hops and the TMCDR pairs trained once
    python speed/shared_training.py compare A/results.jsonl B/results.jsonl
        # the runs both hold: equal records (trials, choice, cold test), whatever trained together, and run times

The projection prices a unit trained once at the longest of its trials' separate times, x1.08 for SSCDR (each
neighbourhood is validated on its own; measured on ml_genre) and x1.0 for a TMCDR pair (each scoring is validated
once a round).
"""

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPEC = Path(__file__).resolve().parent.parent / 'benchmarks' / 'specs' / 'results_paper_protocol.yaml'
UNIT_COST = {'SSCDR': 1.08, 'TMCDR': 1.0}
TIMED = ('seconds', 'trained_with', 'phases')  # what differs between a shared and a separate record's trials


def records(path):
    """The latest record of each (scenario, model, seed) of a results.jsonl, by that key."""
    from recbole_tmcdr.benchmark.results import latest_records, load_records, run_key
    return {run_key(record): record for record in latest_records(load_records(path))}


def run(scenario, models, out, seed=0):
    from recbole_tmcdr.benchmark import runner, worker
    from recbole_tmcdr.benchmark.spec import BenchmarkSpec
    walls = {}
    for mode, run_fn in (('shared', None), ('separate', worker.run_one)):
        spec = BenchmarkSpec.from_file(str(SPEC)).updated(  # each mode pre-trains into a cache of its own
            scenarios=[scenario], models=models, seeds=[seed], jobs=1, threads=1, out=f'{out}/{mode}',
            cache_dir=f'{out}/{mode}/cache')
        start = time.perf_counter()
        runner.run_benchmark(spec.validate(), run_fn=run_fn, report=False, progress=False)
        walls[mode] = time.perf_counter() - start
    shared, separate = records(f'{out}/shared/results.jsonl'), records(f'{out}/separate/results.jsonl')
    equal = all(same_record(shared[key], separate[key]) for key in shared)
    print(f"{scenario} {'+'.join(models)} seed {seed}: separate {walls['separate']:.1f} s, trained together "
          f"{walls['shared']:.1f} s ({walls['shared'] / walls['separate']:.2f}x); records equal: {equal}")


def same_record(a, b):
    """Whether two records of a run hold the same trials, choice and cold test results (times and how they
    trained aside)."""
    strip = lambda trial: {k: v for k, v in trial.items() if k not in TIMED}  # noqa: E731
    return ([strip(t) for t in a['trials']] == [strip(t) for t in b['trials']]
            and all(a[key] == b[key] for key in ('chosen', 'chosen_trial', 'cold_valid', 'cold_test')))


def compare(path_a, path_b):
    a, b = records(path_a), records(path_b)
    common = sorted(set(a) & set(b))
    differing = [key for key in common if not same_record(a[key], b[key])]
    seconds = [sum(r[key]['timings']['total'] for key in common) for r in (a, b)]
    print(f'{len(common)} runs in both: {len(common) - len(differing)} equal records; run time {seconds[0] / 3600:.2f} h '
          f'vs {seconds[1] / 3600:.2f} h ({seconds[0] / max(seconds[1], 1e-9):.2f}x)')
    for key in differing:
        print('  differ:', '/'.join(map(str, key)))


def _trial_key(params):
    return json.dumps({k: v for k, v in params.items() if k != 'sscdr_hops'}, sort_keys=True)


def project(path):
    latest = records(path)
    total = sum(r['timings']['total'] for r in latest.values())
    saved = collections.Counter()
    for (scenario, model, seed), record in latest.items():
        if model == 'SSCDR':  # the trials of one learning rate train once
            groups = collections.defaultdict(list)
            for trial in record['trials']:
                groups[_trial_key(trial['params'])].append(trial['seconds'])
            saved['SSCDR'] += sum(sum(g) - UNIT_COST['SSCDR'] * max(g) for g in groups.values() if len(g) > 1)
        elif model.startswith('TMCDRAdapted_'):  # with TMCDR_X's trial of the same settings
            partner = latest.get((scenario, model.replace('TMCDRAdapted', 'TMCDR'), seed))
            seconds = {_trial_key(t['params']): t['seconds'] for t in (partner or {}).get('trials', [])}
            saved[f"TMCDR_{model.split('_', 1)[1]}"] += sum(
                t['seconds'] + seconds[k] - UNIT_COST['TMCDR'] * max(t['seconds'], seconds[k])
                for t in record['trials'] if (k := _trial_key(t['params'])) in seconds)
    shared = total - sum(saved.values())
    print(f'{len(latest)} runs: run time {total / 3600:.1f} h; with shared training {shared / 3600:.1f} h '
          f'({shared / total:.2f}x)')
    for name, seconds in saved.most_common():
        print(f'  saved by {name}: {seconds / 3600:.2f} h')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    run_parser = commands.add_parser('run')
    run_parser.add_argument('scenario')
    run_parser.add_argument('models', help='comma-separated, e.g. TMCDR_MF,TMCDRAdapted_MF')
    run_parser.add_argument('--out', required=True)
    run_parser.add_argument('--seed', type=int, default=0)
    project_parser = commands.add_parser('project')
    project_parser.add_argument('results')
    compare_parser = commands.add_parser('compare')
    compare_parser.add_argument('results', nargs=2)
    args = parser.parse_args()
    if args.command == 'run':
        run(args.scenario, args.models.split(','), args.out, args.seed)
    elif args.command == 'project':
        project(args.results)
    else:
        compare(*args.results)


if __name__ == '__main__':
    main()
