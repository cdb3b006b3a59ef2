"""inference_grid: settings that change only the inference (SSCDR's sscdr_hops) validated within one training give
what separate runs give, and the benchmark records them as its trials."""

import copy

import pytest

from recbole_tmcdr.benchmark import training_units, worker
from recbole_tmcdr.quick_start import load_data_and_model, run_recbole_cdr
from recbole_tmcdr.validation import ConfigError

from conftest import fast_config

SSCDR = dict(train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:12"], stopping_step=2, learning_rate=0.01)
HOPS = [0, 1, 2]


def run(tiny_scenario, saved=False, **settings):
    return run_recbole_cdr(model='SSCDR', config_file_list=[tiny_scenario], saved=saved,
                           config_dict=fast_config(**{**SSCDR, **settings}))


def assert_as_separate_runs(tiny_scenario, hops, **settings):
    """The grid's outcome of each setting equals a separate run's, and the grid run's own result is the chosen
    setting's run; returns the grid run."""
    joint = run(tiny_scenario, inference_grid={'sscdr_hops': hops}, **settings)
    assert_settings_as_own_runs(joint, 'sscdr_hops', {value: lambda value=value: run(tiny_scenario, sscdr_hops=value,
                                                                                     **settings) for value in hops})
    return joint


def assert_settings_as_own_runs(joint, key, own_runs):
    """Each setting of ``key`` in the grid run ``joint`` has the results of its own run (``own_runs``: value ->
    a callable running it alone), and ``joint``'s own result is the chosen setting's."""
    outcomes = {o['settings'][key]: o for o in joint['inference_grid']}
    assert sorted(outcomes) == sorted(own_runs)
    chosen = max(joint['inference_grid'], key=lambda o: o['best_valid_score'])['settings'][key]
    for value, run_alone in own_runs.items():
        alone = run_alone()
        if value == chosen:
            assert (joint['best_valid_score'], joint['test_result']) == (alone['best_valid_score'], alone['test_result'])
        own = outcomes[value]
        assert own['best_valid_score'] == alone['best_valid_score']
        assert own['best_valid_result'] == alone['best_valid_result']
        assert own['test_result'] == alone['test_result']
        for name in ('best_epoch', 'epochs_run', 'steps', 'steps_at_best', 'stopped_on_patience'):
            assert own['training'][name] == alone['training'][name], name
        assert own['training']['history'] == alone['training']['history']


def test_one_training_validates_each_setting_as_its_own_run_would(tiny_scenario):
    joint = assert_as_separate_runs(tiny_scenario, HOPS)
    # the run's own result is the best setting on validation (the first of equals)
    best = max(joint['inference_grid'], key=lambda o: o['best_valid_score'])
    assert joint['best_valid_score'] == best['best_valid_score'] and joint['test_result'] == best['test_result']
    assert joint['training']['best_epoch'] == best['training']['best_epoch']
    # the settings stop at different epochs on this data: the grid is not trivially one run
    assert len({o['training']['epochs_run'] for o in joint['inference_grid']}) > 1


UNI10 = {'order': 'RO', 'group_by': 'user', 'mode': 'uni10'}


def test_sampled_evaluation_draws_for_each_setting_what_its_own_run_draws(tiny_scenario):
    joint = assert_as_separate_runs(tiny_scenario, HOPS, eval_args=UNI10)
    assert len({o['training']['epochs_run'] for o in joint['inference_grid']}) > 1  # they stop at different epochs


def test_sampled_evaluation_of_settings_that_never_stop(tiny_scenario):
    assert_as_separate_runs(tiny_scenario, [0, 2], eval_args=UNI10, stopping_step=100,
                            train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:4"])


def test_validation_every_few_epochs_counts_the_epochs_trained_after_the_last(tiny_scenario):
    assert_as_separate_runs(tiny_scenario, [0, 1], eval_step=5, stopping_step=10)


@pytest.mark.parametrize('failing_call', [1, 2, 5])  # 5: after two hops already had a best epoch
def test_a_setting_whose_validation_fails_stops_alone(tiny_scenario, monkeypatch, failing_call):
    """Sampled evaluation in small batches: the failing setting has drawn part of its negatives and collected
    part of its batches when it fails; the other setting's results are still those of its own run."""
    from recbole_tmcdr.model.sscdr import SSCDR
    own_map_users, calls = SSCDR.map_users, []
    settings = dict(eval_args=UNI10, eval_batch_size=60)

    def failing_at_two_hops(self, user_ids):
        if self.hops == 2:
            calls.append(1)
            if len(calls) == failing_call:
                raise MemoryError('two hops do not fit')
        return own_map_users(self, user_ids)

    monkeypatch.setattr(SSCDR, 'map_users', failing_at_two_hops)
    joint = run(tiny_scenario, inference_grid={'sscdr_hops': [1, 2]}, **settings)
    monkeypatch.setattr(SSCDR, 'map_users', own_map_users)
    outcomes = {o['settings']['sscdr_hops']: o for o in joint['inference_grid']}
    assert 'two hops do not fit' in outcomes[2]['error'] and 'error' not in outcomes[1]
    alone = run(tiny_scenario, sscdr_hops=1, **settings)
    assert outcomes[1]['test_result'] == alone['test_result'] == joint['test_result']
    assert [h['valid_score'] for h in outcomes[1]['training']['history']] == \
           [h['valid_score'] for h in alone['training']['history']]


def test_a_setting_failing_on_the_test_users_keeps_its_validation_score(tiny_scenario, monkeypatch):
    # the benchmark then fails the run should that setting have won on validation (worker._record)
    from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer
    own_evaluate = ColdStartTrainer.evaluate

    def failing_on_test_users_unless_chosen(self, eval_data, *args, **kwargs):
        chosen = getattr(self, 'chosen_inference_trial', None)  # set once validation is over
        if chosen is not None and self.model.hops != chosen.settings['sscdr_hops']:
            raise MemoryError('two hops do not fit')
        return own_evaluate(self, eval_data, *args, **kwargs)

    monkeypatch.setattr(ColdStartTrainer, 'evaluate', failing_on_test_users_unless_chosen)
    joint = run(tiny_scenario, inference_grid={'sscdr_hops': [1, 2]})
    (failed,) = [o for o in joint['inference_grid'] if 'error' in o]
    assert 'two hops do not fit' in failed['error']
    assert failed['failed_after_validation']['valid_score'] <= joint['best_valid_score']


def test_no_setting_with_a_score_leaves_every_trial_without_one(tiny_scenario, monkeypatch):
    from recbole.trainer import Trainer
    own_valid_epoch = Trainer._valid_epoch
    monkeypatch.setattr(Trainer, '_valid_epoch',
                        lambda self, data, show_progress=False: (float('nan'), own_valid_epoch(self, data)[1]))
    joint = run(tiny_scenario, inference_grid={'sscdr_hops': [1, 2]})
    assert [o['error'] for o in joint['inference_grid']] == ['no validation score'] * 2


def test_config_dict_is_left_as_the_caller_wrote_it(tiny_scenario):
    from recbole_cdr.config import CDRConfig
    eval_args = {'order': 'RO', 'group_by': 'user', 'mode': 'full'}
    settings = fast_config(**dict(SSCDR, train_epochs=["SOURCE:1", "TARGET:1", "OVERLAP:1"], eval_args=eval_args,
                                  kshot='[0, 1]'))
    written = copy.deepcopy(settings)
    run_recbole_cdr(model='SSCDR', config_file_list=[tiny_scenario], saved=False, config_dict=settings)
    CDRConfig(model='SSCDR', config_file_list=[str(tiny_scenario)], config_dict=settings)  # RecBole-CDR's entry
    assert settings == written  # a second run may reuse it


def test_checkpoint_rebuilds_the_chosen_setting(tiny_scenario):
    import glob
    joint = run(tiny_scenario, saved=True, inference_grid={'sscdr_hops': HOPS})
    chosen = max(joint['inference_grid'], key=lambda o: o['best_valid_score'])['settings']['sscdr_hops']
    checkpoint = sorted(glob.glob('saved/SSCDR-*.pth'))[-1]
    config, model, *_ = load_data_and_model(checkpoint)
    assert model.hops == chosen and config['inference_grid'] is None


@pytest.mark.parametrize('model, grid, message', [
    ('SSCDR', {'learning_rate': [0.01]}, "changes more than the inference"),
    ('EMCDR_MF', {'sscdr_hops': [1]}, "inference keys: none"),
    ('SSCDR', {'sscdr_hops': [1, -1]}, "an int >= 0"),
    ('SSCDR', {'sscdr_hops': []}, "non-empty list"),
    ('TMCDR_MF', {'sscdr_hops': [1]}, "inference keys: meta_scoring"),
])
def test_a_bad_grid_is_one_error_naming_the_fix(tiny_scenario, model, grid, message):
    with pytest.raises(ConfigError, match=message):
        run_recbole_cdr(model=model, config_file_list=[tiny_scenario], saved=False,
                        config_dict=fast_config(inference_grid=grid))


def test_trials_differing_only_in_inference_keys_train_once():
    trials = [{'learning_rate': lr, 'sscdr_hops': hops} for lr in (0.001, 0.01) for hops in (1, 2)]
    assert training_units.trial_groups('SSCDR', trials) == [
        ([0, 1], {'learning_rate': 0.001}, {'sscdr_hops': [1, 2]}),
        ([2, 3], {'learning_rate': 0.01}, {'sscdr_hops': [1, 2]})]
    # a model without inference keys, and settings that do not form a grid, keep one training per trial
    lrs = [{'learning_rate': lr} for lr in (0.001, 0.01)]
    assert training_units.trial_groups('EMCDR_MF', lrs) == [([0], lrs[0], None), ([1], lrs[1], None)]
    ragged = [{'sscdr_hops': 1, 'sscdr_unsup_weight': 0.1}, {'sscdr_hops': 2, 'sscdr_unsup_weight': 0.1},
              {'sscdr_hops': 2, 'sscdr_unsup_weight': 0.2}]
    assert [unit[0] for unit in training_units.trial_groups('SSCDR', ragged)] == [[0, 1], [2]]


def test_benchmark_records_the_same_trials_with_and_without_shared_training(tiny_scenario, tmp_path, monkeypatch):
    trials = [{'learning_rate': lr, 'sscdr_hops': hops} for lr in (0.005, 0.01) for hops in (0, 2)]
    base = fast_config(**{k: v for k, v in SSCDR.items() if k != 'learning_rate'})
    task = {'run_id': 'tiny/SSCDR/seed7', 'model': 'SSCDR', 'seed': 7, 'trials': trials, 'base_config': base,
            'run_kwargs': {'config_file_list': [tiny_scenario]}, 'run_dir': str(tmp_path / 'shared'),
            'config_hash': 'h', 'defaults': {}, 'valid_metric': 'ndcg@10', 'scenario': 'tiny',
            'scenario_source': 'tiny', 'search_space': {}, 'lr_search': True, 'overrides': {}, 'code_version': 'x'}
    shared = worker.run_one(task)
    assert [[m['trial'] for m in t['trained_with']] for t in shared['trials']] == [[0, 1], [0, 1], [2, 3], [2, 3]]
    monkeypatch.setattr(training_units, 'inference_keys', lambda model: set())
    separate = worker.run_one({**task, 'run_dir': str(tmp_path / 'separate')})
    assert 'trained_with' not in separate['trials'][0]
    for a, b in zip(shared['trials'], separate['trials']):
        assert (a['params'], a['valid_score'], a['cold_valid'], a['best_epoch'], a['epochs_run']) == \
               (b['params'], b['valid_score'], b['cold_valid'], b['best_epoch'], b['epochs_run'])
    assert (shared['chosen'], shared['cold_test']) == (separate['chosen'], separate['cold_test'])


def run_sscdr_without_training(tmp_path, monkeypatch, trials, **task_fields):
    """The benchmark's record of an SSCDR run of ``trials`` whose trainings are faked, and the config_dict of
    each training."""
    calls = []

    def fake_run_recbole_cdr(model, config_dict=None, saved=True, **kwargs):
        calls.append(config_dict)
        return {'best_valid_score': 0.1, 'valid_score_bigger': True, 'best_valid_result': {'ndcg@10': 0.1},
                'test_result': {'ndcg@10': 0.1}}

    monkeypatch.setattr('recbole_tmcdr.quick_start.run_recbole_cdr', fake_run_recbole_cdr)
    task = {'run_id': 'r', 'model': 'SSCDR', 'seed': 0, 'trials': trials, 'base_config': {}, 'run_kwargs': {},
            'run_dir': str(tmp_path), 'config_hash': 'h', 'defaults': {}, 'valid_metric': 'ndcg@10', 'scenario': 's',
            'scenario_source': 's', 'search_space': {}, 'lr_search': True, 'overrides': {}, 'code_version': 'x',
            **task_fields}
    return worker.run_one(task), calls


def test_a_trial_of_its_own_never_runs_a_grid_given_elsewhere(tmp_path, monkeypatch):
    record, calls = run_sscdr_without_training(tmp_path, monkeypatch, [{'sscdr_hops': 1, 'learning_rate': 0.01}],
                                               base_config={'inference_grid': {'sscdr_hops': [1, 2]}})
    assert calls[0]['inference_grid'] is None and calls[0]['sscdr_hops'] == 1
    assert record['chosen'] == {'sscdr_hops': 1, 'learning_rate': 0.01}
