"""The benchmark while it runs: the workers send their events to the main process through the executor
(in-process for one job, a process pool for more), and a failing run does not stop the others."""

from concurrent.futures import ProcessPoolExecutor

import pytest

from recbole_tmcdr.benchmark import executor as executor_mod
from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark import runner
from recbole_tmcdr.benchmark.display import ProgressDisplay
from recbole_tmcdr.benchmark.spec import BenchmarkSpec

from test_benchmark import fake_run


# ----- the executor path
def failing_for_emcdr(task, progress=None):
    if task['model'] == 'EMCDR_MF':
        raise RuntimeError('boom')
    return fake_run(task)


@pytest.fixture
def seen(monkeypatch):
    """The executor each benchmark ran with and the events its display got."""
    seen = {'executors': [], 'events': []}
    real_execute, real_event = runner.execute, ProgressDisplay.event

    def execute(groups, run_fn, executor, channel, dispatch):
        seen['executors'].append(type(executor))
        return real_execute(groups, run_fn, executor, channel, dispatch)

    monkeypatch.setattr(runner, 'execute', execute)
    monkeypatch.setattr(ProgressDisplay, 'event', lambda self, event: seen['events'].append(event)
                        or real_event(self, event))
    return seen


@pytest.mark.parametrize('jobs, executor', [(1, executor_mod.InlineExecutor), (2, ProcessPoolExecutor)])
def test_local_runs_go_through_the_executor_and_their_events_reach_the_display(jobs, executor, seen,
                                                                                 tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0, 1], jobs=jobs,
                         out=str(tmp_path / 'b'), lr_search=False)
    summary = runner.run_benchmark(spec, run_fn=fake_run, report=False, progress=False)
    assert seen['executors'] == [executor] and len(summary['finished']) == 2 and not summary['failed']
    # run_group's outcome events go to results.jsonl, not to the display
    assert seen['events'] == [] and len(results_io.load_records(tmp_path / 'b' / 'results.jsonl')) == 2


@pytest.mark.parametrize('jobs', [1, 2])
def test_a_failing_run_does_not_stop_the_others(jobs, tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['EMCDR_MF', 'TargetPop'], seeds=[0, 1],
                         jobs=jobs, out=str(tmp_path / 'b'), lr_search=False)
    summary = runner.run_benchmark(spec, run_fn=failing_for_emcdr, report=False, progress=False)
    assert sorted(task['run_id'] for task, _ in summary['failed']) == ['tiny/EMCDR_MF/seed0', 'tiny/EMCDR_MF/seed1']
    assert all('RuntimeError: boom' in error for _, error in summary['failed'])
    finished = results_io.load_records(tmp_path / 'b' / 'results.jsonl')
    assert sorted((r['model'], r['seed']) for r in finished) == [('TargetPop', 0), ('TargetPop', 1)]
    assert len(results_io.load_records(tmp_path / 'b' / 'errors.jsonl')) == 2
