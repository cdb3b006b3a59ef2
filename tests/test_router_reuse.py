"""KRouter reuses a candidate's trained model when an identical run stored it (recbole_tmcdr.trained_models), and
only then: other settings, a corrupt file, a stored model that does not score what was recorded, or
router_reuse_trained: False train the candidate."""

import glob
import logging
import os

import pytest
import torch

from recbole_tmcdr import run_recbole_cdr
from recbole_tmcdr.cache import atomic_torch_save
from recbole_tmcdr.trained_models import payload_checksum

from conftest import fast_config

PHASES = ["SOURCE:2", "TARGET:2", "OVERLAP:2"]
# every run's settings, as a benchmark's overrides: the single runs hold the router's keys too
SETTINGS = fast_config(kshot=[0, 3], embedding_size=8, router_candidates=['TargetPop', 'EMCDR_MF'],
                       store_trained_models=True)


def alone(scenario):
    return run_recbole_cdr(model='EMCDR_MF', config_file_list=[scenario], saved=False,
                           config_dict={**SETTINGS, 'train_epochs': PHASES})


def routed(scenario, emcdr=None, **router):
    settings = {'EMCDR_MF': {'train_epochs': PHASES, **(emcdr or {})}}
    return run_recbole_cdr(model='KRouter', config_file_list=[scenario], saved=False,
                           config_dict={**SETTINGS, 'router_candidate_settings': settings, **router})


def stored_emcdr(tmp_path):
    files = glob.glob(os.path.join(tmp_path, 'cache', 'trained', 'EMCDR_MF-*.pt'))
    assert len(files) == 1
    return files[0]


def test_a_candidate_a_single_run_trained_is_reused_with_its_validation_results(tiny_scenario, tmp_path):
    single = alone(tiny_scenario)
    router = routed(tiny_scenario)
    assert router['routing']['reused'] == ['EMCDR_MF']
    valid = router['routing']['valid']['EMCDR_MF']
    assert valid == {k: m['ndcg@10'] for k, m in single['kshot_valid_results'].items()}
    assert valid[0] == pytest.approx(single['best_valid_result']['ndcg@10'], abs=1e-4)  # RecBole rounds to 4 places
    # another learning rate is another model; TargetPop was stored by the first router
    other = routed(tiny_scenario, emcdr={'learning_rate': 0.005})
    assert other['routing']['reused'] == ['TargetPop']


def test_a_corrupt_or_unverified_stored_model_is_trained_again(tiny_scenario, tmp_path, caplog):
    single = alone(tiny_scenario)
    path = stored_emcdr(tmp_path)
    expected = {k: m['ndcg@10'] for k, m in single['kshot_valid_results'].items()}
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING):
        router = routed(tiny_scenario)
    assert router['routing']['reused'] == [] and router['routing']['valid']['EMCDR_MF'] == expected
    assert f'Ignoring corrupt cache file {path}' in caplog.text
    # a stored state that does not score what its run recorded (e.g. state outside the state_dict)
    payload = torch.load(path, weights_only=True)  # the router stored it again after training it
    payload['best_valid_score'] += 0.1
    payload['checksum'] = payload_checksum(payload)
    atomic_torch_save(payload, path)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        router = routed(tiny_scenario)
    assert router['routing']['reused'] == ['TargetPop'] and router['routing']['valid']['EMCDR_MF'] == expected
    assert f'KRouter candidate EMCDR_MF: not reusing {path}: on the cold validation users it scores ndcg@10' in caplog.text


def test_reuse_off_trains_every_candidate(tiny_scenario):
    alone(tiny_scenario)
    assert routed(tiny_scenario, router_reuse_trained=False)['routing']['reused'] == []


def test_nothing_is_stored_by_default(tiny_scenario, tmp_path):
    run_recbole_cdr(model='TargetPop', config_file_list=[tiny_scenario], saved=False,
                    config_dict={key: value for key, value in SETTINGS.items() if key != 'store_trained_models'})
    assert not os.path.exists(os.path.join(tmp_path, 'cache', 'trained'))


def test_an_edited_content_file_is_another_model(tiny_scenario, tmp_path):
    """A setting that names a file is keyed by the file's content: the same path with other genres is not reused."""
    content = tiny_scenario.parent / 'genres.csv'
    settings = {**SETTINGS, 'content_item_file': str(content), 'router_candidates': ['TargetPop', 'ContentGenre']}
    run_recbole_cdr(model='ContentGenre', config_file_list=[tiny_scenario], saved=False, config_dict=settings)
    header, *rows = content.read_text().splitlines()
    content.write_text('\n'.join([header] + [f"{row.split(',')[0]},g{i % 7}" for i, row in enumerate(rows)]) + '\n')
    router = run_recbole_cdr(model='KRouter', config_file_list=[tiny_scenario], saved=False, config_dict=settings)
    assert 'ContentGenre' not in router['routing']['reused']


@pytest.mark.parametrize('malformed', ['state_dict', 'best_valid_result'])
def test_a_malformed_file_with_a_valid_checksum_is_a_miss(tiny_scenario, tmp_path, caplog, malformed):
    settings = {**SETTINGS, 'router_candidates': ['TargetPop']}
    run_recbole_cdr(model='TargetPop', config_file_list=[tiny_scenario], saved=False, config_dict=settings)
    [path] = glob.glob(os.path.join(tmp_path, 'cache', 'trained', 'TargetPop-*.pt'))
    payload = torch.load(path, weights_only=True)
    payload[malformed] = [1, 2]
    payload['checksum'] = payload_checksum(payload)
    atomic_torch_save(payload, path)
    with caplog.at_level(logging.WARNING):
        router = run_recbole_cdr(model='KRouter', config_file_list=[tiny_scenario], saved=False, config_dict=settings)
    assert router['routing']['reused'] == [] and f'Ignoring the trained model {path}' in caplog.text


def test_a_failed_store_is_a_warning_and_the_run_stands(tiny_scenario, tmp_path, caplog):
    os.makedirs(tmp_path / 'cache', exist_ok=True)
    (tmp_path / 'cache' / 'trained').write_text('a file where the directory should be')  # as a full or read-only disk
    with caplog.at_level(logging.WARNING):
        result = run_recbole_cdr(model='TargetPop', config_file_list=[tiny_scenario], saved=False, config_dict=SETTINGS)
    assert result['test_result'] and 'Could not store the trained model' in caplog.text


def test_a_class_without_source_file_is_neither_stored_nor_reused(tiny_scenario, tmp_path, registry_restored):
    from recbole_tmcdr.model.target_pop import TargetPop
    from recbole_tmcdr.registry import register_model
    namespace = {'TargetPop': TargetPop, '__name__': 'typed_in'}
    exec('class TypedInPop(TargetPop):\n    pass\n', namespace)  # a class typed into an interpreter: no source file
    register_model('TypedInPop')(namespace['TypedInPop'])
    run_recbole_cdr(model='TypedInPop', config_file_list=[tiny_scenario], saved=False, config_dict=SETTINGS)
    router = run_recbole_cdr(model='KRouter', config_file_list=[tiny_scenario], saved=False,
                             config_dict={**SETTINGS, 'router_candidates': ['TypedInPop']})
    assert router['routing']['reused'] == [] and not glob.glob(os.path.join(tmp_path, 'cache', 'trained', 'TypedIn*'))
