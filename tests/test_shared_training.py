"""TMCDR's scoring (meta_scoring) is an inference key: one training validates theta and theta', each as its own
run would, and the benchmark trains a TMCDRAdapted_X run together with the TMCDR_X run of its scenario and seed."""

import pytest

from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark import runner, training_units, worker
from recbole_tmcdr.benchmark.spec import BenchmarkSpec
from recbole_tmcdr.quick_start import run_recbole_cdr

from conftest import fast_config
from test_inference_grid import assert_settings_as_own_runs, run_sscdr_without_training
from test_tmcdr import META

# the two scorings stop at different epochs on the tiny data (checked below), so the grid is not trivially one run
TMCDR = dict(META, train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:12"], stopping_step=2, learning_rate=0.01,
             meta_inner_lr=0.5)


def run(tiny_scenario, model='TMCDR_MF', **settings):
    return run_recbole_cdr(model=model, config_file_list=[tiny_scenario], saved=False,
                           config_dict=fast_config(**{**TMCDR, **settings}))


@pytest.mark.parametrize('settings', [
    {}, {'meta_diagnostics': False},
    # theta' = theta in the warm start: both scorings choose the same one, then each its meta stage
    {'meta_warm_start_epochs': 4},
    {'meta_warm_start_epochs': 4, 'eval_args': {'order': 'RO', 'group_by': 'user', 'mode': 'uni10'}}])
def test_one_training_validates_theta_and_theta_prime_as_their_own_runs(tiny_scenario, settings):
    joint = run(tiny_scenario, **settings, inference_grid={'meta_scoring': ['theta', 'adapted']})
    assert_settings_as_own_runs(joint, 'meta_scoring', {
        'theta': lambda: run(tiny_scenario, **settings),
        'adapted': lambda: run(tiny_scenario, 'TMCDRAdapted_MF', **settings)})
    assert len({o['training']['epochs_run'] for o in joint['inference_grid']}) > 1


def test_a_round_of_the_grid_validates_each_scoring_once(tiny_scenario, monkeypatch):
    """With full ranking and meta_diagnostics, each setting's validation scores both theta and theta': the
    grid's second setting reuses what the first validated (the same state, no random draw)."""
    from recbole.trainer import Trainer
    calls, own_valid_epoch = [], Trainer._valid_epoch

    def counted(self, *args, **kwargs):
        calls.append(1)
        return own_valid_epoch(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, '_valid_epoch', counted)
    joint = run(tiny_scenario, inference_grid={'meta_scoring': ['theta', 'adapted']})
    rounds = max(len(o['training']['history']) for o in joint['inference_grid'])
    assert len(calls) == 2 * rounds


def test_a_failed_refresh_of_theta_prime_is_redone_by_the_next_setting(tiny_scenario, monkeypatch):
    from recbole_tmcdr.model.tmcdr import TMCDR
    own_refresh, calls = TMCDR.refresh_adapted_bridge, []

    def failing_once(self, interaction):
        calls.append(1)
        if len(calls) == 3:  # the theta setting's refresh at the second meta epoch
            raise MemoryError('refresh failed')
        return own_refresh(self, interaction)

    monkeypatch.setattr(TMCDR, 'refresh_adapted_bridge', failing_once)
    joint = run(tiny_scenario, inference_grid={'meta_scoring': ['theta', 'adapted']})
    monkeypatch.setattr(TMCDR, 'refresh_adapted_bridge', own_refresh)
    outcomes = {o['settings']['meta_scoring']: o for o in joint['inference_grid']}
    assert 'refresh failed' in outcomes['theta']['error']
    alone = run(tiny_scenario, 'TMCDRAdapted_MF')
    assert outcomes['adapted']['training']['history'] == alone['training']['history']
    assert outcomes['adapted']['test_result'] == alone['test_result']


SEARCH = {'learning_rate': [0.005, 0.01], 'meta_inner_lr': [0.5]}


def spec_of(tiny_scenario, tmp_path, models, name, overrides=None, **fields):
    fields = {'search_space': {model: SEARCH for model in models}, **fields}
    overrides = {**{k: v for k, v in fast_config(**TMCDR).items() if k not in SEARCH and k != 'seed'},
                 **(overrides or {})}
    return BenchmarkSpec(scenarios=[str(tiny_scenario)], models=models, seeds=[0], jobs=1, out=str(tmp_path / name),
                         cache_dir=str(tmp_path / name / 'cache'), overrides=overrides, **fields).validate()


def records(out):
    return {r['model']: r for r in results_io.load_records(out / 'results.jsonl')}


def timeless(entry):
    """A trial entry or training summary without its times and without its phases, which say whether the
    pre-training came from the cache (a run of the pair pre-trains what the other then reuses)."""
    return {k: v for k, v in entry.items() if k not in ('seconds', 'trained_with', 'phases')}


def test_benchmark_trains_tmcdr_and_its_adapted_variant_once(tiny_scenario, tmp_path, capsys):
    models = ['TMCDR_MF', 'TMCDRAdapted_MF']
    spec = spec_of(tiny_scenario, tmp_path, models, 'shared')
    runner.run_benchmark(spec, report=False, progress=False, dry_run=True)
    assert 'todo  tiny/TMCDRAdapted_MF/seed0  (2 trial(s), trains with tiny/TMCDR_MF/seed0)' in capsys.readouterr().err
    runner.run_benchmark(spec, report=False, progress=False)
    separate = spec_of(tiny_scenario, tmp_path, models, 'separate')
    runner.run_benchmark(separate, run_fn=worker.run_one, report=False, progress=False)  # one run at a time
    shared, alone = records(tmp_path / 'shared'), records(tmp_path / 'separate')
    for model in models:
        a, b = shared[model], alone[model]
        assert [t['trained_with'] for t in a['trials']] == [
            [{'model': 'TMCDR_MF', 'trial': i}, {'model': 'TMCDRAdapted_MF', 'trial': i}] for i in range(2)]
        assert all('trained_with' not in t for t in b['trials'])
        for x, y in zip(map(timeless, a['trials']), map(timeless, b['trials'])):
            assert {k: x[k] for k in x if x[k] != y.get(k)} == {}, {k: y.get(k) for k in x if x[k] != y.get(k)}
        assert timeless(a['training']) == timeless(b['training'])
        for key in ('chosen', 'chosen_trial', 'valid_score', 'cold_valid', 'cold_test', 'config_hash'):
            assert a[key] == b[key], (model, key)
    assert 'trained with tiny/TMCDR_MF/seed0' in open(shared['TMCDRAdapted_MF']['run_dir'] + '/console.log').read()
    # the pair's training time is split between them, its phases' seconds too (the cost report adds them up)
    for trial in range(2):
        overlap = [shared[model]['trials'][trial]['phases']['OVERLAP']['seconds'] for model in models]
        assert overlap[0] == overlap[1] and shared['TMCDR_MF']['trials'][trial]['seconds'] >= overlap[0]


def batches_of(tiny_scenario, tmp_path, models, **fields):
    tasks = runner.plan(spec_of(tiny_scenario, tmp_path, models, 'plan', **fields), str(tmp_path / 'plan'), '')
    return [[task['model'] for task in batch] for batch in training_units.training_batches(tasks)]


def test_only_runs_that_train_alike_train_together(tiny_scenario, tmp_path):
    models = ['TMCDR_MF', 'EMCDR_MF', 'TMCDRPaperStep_MF', 'TMCDRAdapted_MF', 'TMCDR_BPR', 'TMCDRAdapted_BPR']
    default_spaces = {'search_space': {}}  # the models' own: TMCDR_BPR and TMCDRAdapted_BPR search lambda
    assert batches_of(tiny_scenario, tmp_path, models, **default_spaces) == [
        ['TMCDR_MF', 'TMCDRAdapted_MF'], ['EMCDR_MF'], ['TMCDRPaperStep_MF'], ['TMCDR_BPR', 'TMCDRAdapted_BPR']]
    # without a search, the two BPR models' lambdas (their YAML files differ) are not searched: no shared training
    assert batches_of(tiny_scenario, tmp_path, models, lr_search=False)[-2:] == [['TMCDR_BPR'], ['TMCDRAdapted_BPR']]
    # K-shot results exist for the setting a training chooses only; a stored trained model is keyed by its own run
    assert batches_of(tiny_scenario, tmp_path, ['TMCDR_MF', 'TMCDRAdapted_MF'], kshot=[1]) == [
        ['TMCDR_MF'], ['TMCDRAdapted_MF']]
    assert batches_of(tiny_scenario, tmp_path, ['TMCDR_MF', 'TMCDRAdapted_MF'],
                      overrides={'store_trained_models': True}) == [['TMCDR_MF'], ['TMCDRAdapted_MF']]


def test_a_run_storing_its_trained_models_trains_each_trial_on_its_own(tmp_path, monkeypatch):
    _, calls = run_sscdr_without_training(tmp_path, monkeypatch, [{'sscdr_hops': 1}, {'sscdr_hops': 2}],
                                          share_training=False)
    assert [config_dict['inference_grid'] for config_dict in calls] == [None, None]


def test_trials_shared_across_runs_only_where_they_match():
    """TMCDR_BPR searches lambda {0.005, 0.02}, TMCDRAdapted_BPR {0.02, 0.1}: only lambda 0.02 trains once."""
    theta = [{'meta_scoring': 'theta', 'learning_rate': 0.01, 'meta_inner_lr': lam} for lam in (0.005, 0.02)]
    adapted = [{'meta_scoring': 'adapted', 'learning_rate': 0.01, 'meta_inner_lr': lam} for lam in (0.02, 0.1)]
    units = training_units.trial_groups('TMCDR_BPR', theta + adapted)
    assert [(indices, grid) for indices, _, grid in units] == [
        ([0], None), ([1, 2], {'meta_scoring': ['theta', 'adapted']}), ([3], None)]
