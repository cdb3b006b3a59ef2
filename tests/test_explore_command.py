"""The exploration command on the tiny synthetic scenario: settings checks, cached models, no leak, the report."""

import json

import pandas as pd
import pytest
import torch
import yaml

from recbole_tmcdr.benchmark.spec import resolve_scenario
from recbole_tmcdr.data import prepare_scenario
from recbole_tmcdr.explore.__main__ import main
from recbole_tmcdr.explore.problem import model_checkpoint, read_checkpoint
from recbole_tmcdr.explore.settings import load_settings
from recbole_tmcdr.validation import ConfigError

from conftest import fast_config

MODEL_SETTINGS = fast_config(train_epochs=['SOURCE:2', 'TARGET:2', 'OVERLAP:2'], meta_group_size=8)
MODEL_SETTINGS.pop('seed')


@pytest.mark.parametrize('override, message', [
    ({'rounds': 0}, "The 'rounds' parameter of explore must be an int > 0. Got 0 instead."),
    ({'epsilon': 2}, "The 'epsilon' parameter of explore must be a float in [0, 1]. Got 2 instead."),
    ({'prior_strength': -1.0}, "The 'prior_strength' parameter of explore must be a float > 0. Got -1.0 instead."),
    ({'seeds': [1, 1]}, "The 'seeds' parameter of explore must be a list of distinct integers in [0, 2147483647], "
                        'non-empty. Got [1, 1] instead.'),
    ({'roundz': 3}, "Unknown exploration parameter 'roundz'. Did you mean 'rounds'?"),
    ({'report_rounds': [10, 60]}, "The 'report_rounds' parameter of explore must not exceed rounds (50). "
                                  'Got [10, 60] instead.'),
    ({'policies': ['linucbb']}, "Unknown policy 'linucbb'. Did you mean 'linucb'?"),
    ({'models': ['EMCDR_MFF']}, "Unknown model 'EMCDR_MFF'. Did you mean 'EMCDR_MF'?"),
    ({'models': ['TargetPop']}, "The 'models' parameter of explore lists 'TargetPop', which maps no source user"),
    ({'search': {'rounds': [1, 2]}}, "The 'search' parameter of explore lists 'rounds', which no policy reads."),
    ({'search': {'epsilon': [0.1, 3]}}, "The 'search' parameter of explore gives 'epsilon' the value 3: each must "
                                        'be a float in [0, 1].'),
    ({'model_settings': {'seed': 3}}, "The 'model_settings' parameter of explore may not set seed"),
])
def test_bad_settings_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as error:
        load_settings(overrides=override)
    assert str(error.value).startswith(message)


def test_every_default_key_is_annotated():
    from recbole_tmcdr.config import resource_dir
    from recbole_tmcdr.explore.settings import RULES
    text = (resource_dir('properties') / 'explore.yaml').read_text()
    top_level = [line for line in text.splitlines() if line and not line.startswith((' ', '#'))]
    assert sorted(line.split(':')[0] for line in top_level) == sorted(RULES)
    assert all('# (' in line for line in top_level)


def test_a_model_without_a_dot_product_base_model_is_refused_before_training(tiny_scenario):
    with pytest.raises(ConfigError, match="whose base model CML does not score by a dot product"):
        model_checkpoint(resolve_scenario(str(tiny_scenario)), 'EMCDR_CML', 7, MODEL_SETTINGS)


def write_settings(directory, **extra):
    settings = {'rounds': 6, 'report_rounds': [2, 6], 'seeds': [7, 8], 'models': ['EMCDR_MF', 'TMCDR_MF'],
                'search': {'prior_strength': [10.0, 100.0], 'linucb_alpha': [0.3]}, 'cohort_size': 4,
                'model_settings': MODEL_SETTINGS, **extra}
    path = directory / 'explore.yaml'
    path.write_text(yaml.safe_dump(settings))
    return path


def test_command_end_to_end_writes_the_report_and_reuses_models(tiny_scenario, tmp_path, capsys):
    settings = write_settings(tmp_path)
    out = tmp_path / 'out'
    argv = ['--scenarios', str(tiny_scenario), '--out', str(out), '--config_files', str(settings)]
    runs = main(argv)
    assert len(runs) == 2 and all(m['trained'] for r in runs for m in r['problem']['models'])
    record = json.loads((out / 'runs' / 'tiny-seed7.json').read_text())
    streams = record['streams']
    # every prior-using policy once per prior (no transfer + the two models), the others once
    assert len(streams) == 3 + 5 * 3
    assert streams['linucb|TMCDR_MF']['chosen']['prior_strength'] in (10.0, 100.0)
    assert len(streams['linucb|TMCDR_MF']['candidates']) == 2
    assert all(len(s['hits']) == 6 and s['regret'][-1] >= 0 for s in streams.values())
    report = (out / 'RESULTS.md').read_text()
    assert '| linucb | TMCDR_MF |' in report and 'hits@2' in report and 'regret@6' in report
    assert 'Does the cross-domain prior lower regret' in report
    assert 'not tested (n=2)' in report  # two seeds: no test, said so
    assert (out / 'regret_tiny.png').stat().st_size > 10000

    # unchanged settings: the run files are kept; --force recomputes them from the cached checkpoints
    written = (out / 'runs' / 'tiny-seed7.json').stat().st_mtime_ns
    main(argv)
    assert (out / 'runs' / 'tiny-seed7.json').stat().st_mtime_ns == written
    forced = main(argv + ['--force'])
    assert not any(m['trained'] for r in forced for m in r['problem']['models'])
    assert forced[0]['streams']['linucb|TMCDR_MF']['hits'] == runs[0]['streams']['linucb|TMCDR_MF']['hits']


def test_command_errors_are_one_line(tiny_scenario, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['--scenarios', str(tiny_scenario), '--out', str(tmp_path), '--epsilon=5'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "explore: error: The 'epsilon' parameter of explore must be a float in [0, 1]. Got 5 instead.")


def test_cold_test_users_target_rows_reach_no_model(tiny_scenario):
    """Dropping some of the cold test users' target rows changes the rewards and nothing else: the item
    embeddings, f(u^s), the mean warm user and popularity are the same to the bit."""
    content = yaml.safe_load(tiny_scenario.read_text())
    scenario = {k: v for k, v in content['scenario'].items() if k != 'name'}
    prepared = prepare_scenario('tiny', scenario, cache_dir='probe', seed=7, cold_user_ratio=0.2,
                                cold_valid_fraction=0.5)
    target = pd.read_csv(scenario['target_file'])
    train_items = set(target.loc[~target['user'].isin(prepared.cold_valid_users + prepared.cold_test_users), 'item'])
    loaded = []
    for _ in range(2):
        loaded.append({model: read_checkpoint(model_checkpoint(resolve_scenario(str(tiny_scenario)), model, 7,
                                                               MODEL_SETTINGS).checkpoint)
                       for model in ('EMCDR_MF', 'PTUPCDR')})
        # drop each cold test user's later rows whose item is also a training item (item and user ids keep their order)
        is_test = target['user'].isin(prepared.cold_test_users)
        later = target.groupby('user').cumcount() > 0
        target = target[~(is_test & later & target['item'].isin(train_items))]
        target.to_csv(scenario['target_file'], index=False)
    for model in ('EMCDR_MF', 'PTUPCDR'):
        before, after = loaded[0][model], loaded[1][model]
        for name in ('items', 'test_users', 'valid_users', 'valid_relevant', 'popularity', 'mean_warm_user', 'f_test',
                     'f_valid'):
            assert torch.equal(getattr(before, name), getattr(after, name)), name
        assert before.test_relevant.sum() > after.test_relevant.sum()  # the rewards did change
        assert bool((after.test_relevant <= before.test_relevant).all())


def test_the_exploration_code_is_not_part_of_the_training_code_hash(monkeypatch, tmp_path):
    """Editing the simulation keeps the benchmark's finished runs and the cached checkpoints."""
    from recbole_tmcdr.benchmark import inputs
    package = tmp_path / 'pkg'
    (package / 'explore').mkdir(parents=True)
    (package / 'model.py').write_text('a = 1\n')
    (package / 'explore' / 'policies.py').write_text('b = 1\n')
    monkeypatch.setattr('recbole_tmcdr.config.PACKAGE_DIR', package)
    monkeypatch.setattr(inputs, '_CODE_SHA', {})
    before = inputs.code_sha()
    (package / 'explore' / 'policies.py').write_text('b = 2\n')
    inputs._CODE_SHA.clear()
    assert inputs.code_sha() == before
    (package / 'model.py').write_text('a = 2\n')
    inputs._CODE_SHA.clear()
    assert inputs.code_sha() != before
