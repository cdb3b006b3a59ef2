"""Smoke test of the speed benchmarks (speed/run_all.py --quick): every figure runs on tiny synthetic data
and the table is printed and appended to the results file. The TARGETS are not asserted here (tiny sizes
say nothing about speed); the full run (`make speed`) measures them."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIGURE_KEYS = ('1a', '1b', '1c', '1d', '2', '3', '3b', '4', '5a', '5b', '6a', '6b', '6c', '6d', '7', '8', '8b', '8c', '8d', '8e', '9a', '9b', '10', '11')
MEASURED_ONLY = ('3b', '5a', '6c', '6d', '10')  # figures without a target: their result column is '-'


def test_run_all_quick_prints_and_appends_the_table(tmp_path):
    results = tmp_path / 'RESULTS.md'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    proc = subprocess.run([sys.executable, str(REPO / 'speed' / 'run_all.py'), '--quick', '--results', str(results)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    written = results.read_text()
    assert written.startswith('# Benchmark results')
    for text in (proc.stdout, written):
        assert '| # | figure | measured | target | result |' in text
        assert 'Machine: ' in text and 'torch: ' in text and 'cores: ' in text
        assert 'Command: `python speed/run_all.py --quick' in text
        rows = dict(re.findall(r'^\| (\w+) \| .* \| (PASS|FAIL|-) \|$', text, flags=re.M))
        assert set(FIGURE_KEYS) <= set(rows), rows
        assert {key for key, verdict in rows.items() if verdict == '-'} == set(MEASURED_ONLY), rows
    assert 'ERROR' not in written, written  # every figure ran (its verdict is not checked)
    assert 'Reusing pre-trained embeddings' in written  # figure 5: the 2nd model reused the 1st's pre-training
    assert '"pretraining_reused": {"SOURCE": true, "TARGET": true}' in written  # figure 9's 2nd run, too
    assert not (tmp_path / 'log').exists()  # RecBole's log/ went to the benchmark's own work directory


def test_pretraining_ablation_quick_prints_every_variant(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    proc = subprocess.run([sys.executable, str(REPO / 'speed' / 'ablation_pretrain.py'), '--quick', '--rounds', '1'],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [line[0] for line in proc.stdout.splitlines() if line[:2] in ('a ', 'b ', 'c ', 'd ', 'e ')] == list('abcde')


def test_table_time_figure_fails_unless_one_complete_run(tmp_path):
    """Figure 11 passes only on every run of the spec, each timed, from one code version."""
    import gzip
    import json
    sys.path.insert(0, str(REPO))
    from speed import bench_table_time
    spec = tmp_path / 'spec.yaml'
    spec.write_text('scenarios: [ml_genre]\nmodels: [EMCDR_MF]\nseeds: [0, 1]\n')

    def figure(versions):
        records = tmp_path / 'results.jsonl.gz'
        with gzip.open(records, 'wt') as f:
            for seed, version in enumerate(versions):
                f.write(json.dumps({'scenario': 'ml_genre', 'model': 'EMCDR_MF', 'seed': seed, 'code_version': version,
                                    'timings': {'total': 60.0}, 'finished_at': '2026-01-01T01:00:00+00:00'}) + '\n')
        return bench_table_time.run(None, spec_path=spec, records_path=records)[0]

    assert figure(['a', 'a']).verdict() == 'PASS' and abs(figure(['a', 'a']).value - 60 / 3600) < 1e-9
    assert figure(['a']).verdict() == 'FAIL'        # a run is missing
    assert figure(['a', 'b']).verdict() == 'FAIL'   # two code versions
