"""Figure 11: time to the paper-protocol table, the wall time of ``benchmarks/specs/results_paper_protocol.yaml``.

The spec takes hours, so this figure does not run it: it reads the records of its clean run
(``benchmarks/results/paper_protocol_rerun/``, two runs at a time with one thread each; its STATUS.md gives the
commands) and reports the wall time the spec's report gives for them: the time during which at least one run
was running, so the gaps between sittings are not counted (runs trained together count as one training:
:func:`recbole_tmcdr.benchmark.run_sections.training_intervals`). The figure fails unless the records hold
every run of the spec, each with its timings, all from one code version. Its details name the code version and
the CPU of the records, which may differ from this run's.
"""

import gzip
import json
from pathlib import Path

from recbole_tmcdr.benchmark.results import latest_records, run_key
from recbole_tmcdr.benchmark.run_sections import run_time
from recbole_tmcdr.benchmark.spec import BenchmarkSpec, resolve_scenario
from speed.common import Figure

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / 'benchmarks' / 'specs' / 'results_paper_protocol.yaml'
RECORDS = REPO / 'benchmarks' / 'results' / 'paper_protocol_rerun' / 'results.jsonl.gz'
LIMIT_H = 12.0


def read_records(path):
    with gzip.open(path, 'rt', encoding='utf-8') as f:
        return latest_records([json.loads(line) for line in f if line.strip()])


def shown(path):
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def run(ctx, spec_path=SPEC, records_path=RECORDS):
    spec = BenchmarkSpec.from_file(spec_path)
    expected = {(resolve_scenario(s).label, m, int(seed))
                for s in spec.scenarios for m in spec.models for seed in spec.seeds}
    records = [r for r in read_records(records_path) if run_key(r) in expected]
    missing = sorted(expected - {run_key(r) for r in records})
    timing = run_time(records) or {'runs': 0, 'busy_h': None, 'run_h': 0.0, 'span_h': 0.0}
    versions = {str(r.get('code_version')) for r in records}
    # one clean run: every run of the spec, each with its timings, all made by one code version
    complete = not missing and timing['runs'] == len(expected) and len(versions) == 1
    details = {'records': shown(records_path), 'spec': shown(spec_path),
               'runs': f'{len(records)} of {len(expected)}', 'missing (first 5)': [list(k) for k in missing[:5]],
               'run time h': round(float(timing['run_h']), 2),
               'first start to last finish h': round(float(timing['span_h']), 2),
               'runs with timings': timing['runs'], 'code versions': sorted(versions),
               'cpus': sorted({str((r.get('host') or {}).get('cpu', 'not recorded')) for r in records}),
               'threads per run': sorted({(r.get('host') or {}).get('torch_threads') for r in records},
                                         key=str)}
    name = ('time to the paper-protocol table: wall time while runs were running '
            f'({len(records)} of {len(expected)} runs, read from their records)')
    busy = timing['busy_h']
    return [Figure('11', name, busy, ' h', f'<= {LIMIT_H:g} h, all runs, one code version',
                   complete and busy <= LIMIT_H, details)]
