"""The benchmark while it runs: the trainer reports its phase and epoch, the workers send them to the main
process through the executor (in-process for one job, a process pool for more), the console shows them (a bar,
or a status line when the output is not a terminal), and a failing run does not stop the others."""

import io
import re
from concurrent.futures import ProcessPoolExecutor

import pytest

from recbole_tmcdr import progress as training_progress
from recbole_tmcdr.benchmark import executor as executor_mod
from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark import runner
from recbole_tmcdr.benchmark.display import ProgressDisplay, stage_label
from recbole_tmcdr.benchmark.spec import BenchmarkSpec
from recbole_tmcdr.benchmark.worker import _epoch_events

from test_benchmark import fake_run


def events_of_a_run(run_id, n_trials, *epochs):
    yield {'event': 'start', 'run_id': run_id, 'n_trials': n_trials}
    for index, phase, stage, epoch, budget in epochs:
        yield {'event': 'trial_start', 'run_id': run_id, 'index': index, 'params': {}}
        yield {'event': 'epoch', 'run_id': run_id, 'index': index, 'phase': phase, 'stage': stage, 'epoch': epoch,
               'epochs': budget}


# ----- the display
def test_stage_labels():
    assert stage_label('SOURCE', None) == 'SOURCE' and stage_label('OVERLAP', 'bridge') == 'OVERLAP'
    assert stage_label('OVERLAP', 'meta') == 'META' and stage_label('OVERLAP', 'warm_start') == 'WARM_START'
    assert stage_label('BOTH', 'bridge') == 'BOTH'


def test_status_line_names_each_running_trial_with_its_phase_and_epoch():
    stream = io.StringIO()  # not a terminal: status lines, no bar
    display = ProgressDisplay(total=80, done=2, status_interval=60, stream=stream)
    for event in [*events_of_a_run('ml_genre/TMCDR_MF/seed0', 8, (1, 'OVERLAP', 'meta', 12, 100)),
                  *events_of_a_run('ml_genre/EMCDR_MF/seed1', 1, (0, 'SOURCE', None, 3, 30)),
                  *events_of_a_run('ml_genre/TargetPop/seed2', 1),
                  *events_of_a_run('ml_genre/EMCDR_BPR/seed0', 1)]:
        display.event(event)
    display.finish('ml_genre/EMCDR_BPR/seed0', 'FAILED ml_genre/EMCDR_BPR/seed0: boom', failed=True)
    line = display.status_line()
    assert re.fullmatch(r'\[\d\d:\d\d:\d\d\] 3/80 runs done \(1 failed\), running: '
                        r'ml_genre/TMCDR_MF/seed0 \(trial 2/8, META epoch 12/100\), '
                        r'ml_genre/EMCDR_MF/seed1 \(SOURCE epoch 3/30\), ml_genre/TargetPop/seed2', line), line
    assert stream.getvalue() == 'FAILED ml_genre/EMCDR_BPR/seed0: boom\n'  # the interval has not passed yet
    display.last_status -= 60
    display.tick()
    assert stream.getvalue().splitlines()[-1] == line and display.bar.disable
    display.close()


@pytest.mark.parametrize('enabled', [False, True])
def test_no_status_lines_with_the_bar_or_without_progress(enabled):
    stream = io.StringIO()
    display = ProgressDisplay(total=2, done=0, enabled=enabled, status_interval=60, stream=stream)
    for event in events_of_a_run('a/M/seed0', 2, (0, 'TARGET', None, 1, 5)):
        display.event(event)
    display.last_status -= 3600
    display.tick()
    assert '] 0/2 runs done' not in stream.getvalue() and display.bar.disable is not enabled
    if enabled:  # the bar (forced, as --progress) names the running trial
        assert 'a/M/seed0 (trial 1/2, TARGET epoch 1/5)' in stream.getvalue()
    display.close()


# ----- the trainer reports its epochs
def test_trainer_reports_phase_stage_and_epoch(pipeline):
    run = pipeline('TMCDR_MF', train_epochs=['SOURCE:2', 'TARGET:2', 'OVERLAP:3'], meta_warm_start_epochs=2,
                   embedding_size=8, meta_group_size=8, meta_groups_per_batch=4, force_pretrain=True)
    reported = []
    with training_progress.listening(reported.append):
        run.fit()
    stages = [(r['phase'], r['stage'], r['epochs']) for r in reported]
    assert sorted(set(stages), key=stages.index) == [('SOURCE', None, 2), ('TARGET', None, 2),
                                                     ('OVERLAP', 'warm_start', 2), ('OVERLAP', 'meta', 3)]
    for stage in set(stages):  # each stage counts its epochs from 1, within its budget
        numbers = [r['epoch'] for r in reported if (r['phase'], r['stage'], r['epochs']) == stage]
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) <= stage[2]
    training_progress.report(phase='SOURCE', stage=None, epoch=1, epochs=1)  # no listener any more
    assert len(reported) == len(stages)


# ----- the executor path
def fake_run_with_epochs(task, progress=None):
    """A run whose trainer reports two SOURCE epochs (module level: picklable for worker processes)."""
    with training_progress.listening(_epoch_events(progress, [(task['run_id'], 0)])):
        for epoch in (1, 2):
            training_progress.report(phase='SOURCE', stage=None, epoch=epoch, epochs=2)
    return fake_run(task)


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
def test_local_runs_go_through_the_executor_and_their_epochs_reach_the_display(jobs, executor, seen,
                                                                                 tiny_scenario, tmp_path):
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['TargetPop'], seeds=[0, 1], jobs=jobs,
                         out=str(tmp_path / 'b'), lr_search=False)
    summary = runner.run_benchmark(spec, run_fn=fake_run_with_epochs, report=False, progress=False)
    assert seen['executors'] == [executor] and len(summary['finished']) == 2 and not summary['failed']
    epochs = sorted((e['run_id'], e['epoch']) for e in seen['events'] if e['event'] == 'epoch')
    assert epochs == [('tiny/TargetPop/seed0', 1), ('tiny/TargetPop/seed0', 2),
                      ('tiny/TargetPop/seed1', 1), ('tiny/TargetPop/seed1', 2)]
    assert all(e['phase'] == 'SOURCE' for e in seen['events'] if e['event'] == 'epoch')
    assert len(results_io.load_records(tmp_path / 'b' / 'results.jsonl')) == 2


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


def test_status_interval_is_checked(capsys):
    from recbole_tmcdr.benchmark.__main__ import main as benchmark_main
    with pytest.raises(SystemExit) as exit_info:
        benchmark_main(['--scenarios', 'ml_genre', '--models', 'TargetPop', '--status-interval', '-1'])
    assert exit_info.value.code == 2 and '--status-interval must be >= 0 seconds' in capsys.readouterr().err
