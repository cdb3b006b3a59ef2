"""Registry lookups and errors, the toolkit's own entry point, YAML precedence."""

import re

import pytest
import yaml

import recbole_cdr.utils
import recbole_cdr.quick_start.quick_start as toolkit_quick_start
from recbole_tmcdr.config import dataset_config_file, dataset_names, plugin_yaml_files
from recbole_tmcdr.model.emcdr import EMCDR
from recbole_tmcdr.model.tmcdr import TMCDR
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.registry import MODELS, TRAINERS, Registry, RegistryError, get_trainer
from recbole_tmcdr.trainer import ColdStartTrainer, MetaTrainer

from conftest import fast_config


def test_registered_names_resolve_to_one_implementation_per_family():
    for base in ('MF', 'BPR', 'ListRankMF', 'CML'):
        assert MODELS.get(f'EMCDR_{base}') is EMCDR
        assert MODELS.get(f'TMCDR_{base}') is TMCDR
    assert MODELS.get('EMCDR_MFori') is EMCDR


def test_unknown_model_lists_available_and_suggests():
    with pytest.raises(RegistryError) as error:
        MODELS.get('TMCDRMF')
    message = str(error.value)
    assert "Unknown model 'TMCDRMF'" in message and "Did you mean 'TMCDR_MF'?" in message
    assert 'EMCDR_MF' in message and 'TargetPop' in message


def test_duplicate_registration_is_an_error():
    registry = Registry('model')
    registry.register('A', object)
    with pytest.raises(RegistryError, match="Duplicate model name 'A'"):
        registry.register('A', int)
    with pytest.raises(RegistryError, match='Duplicate model name'):
        MODELS.register('EMCDR_MF', object)


def test_trainer_is_declared_by_the_model_without_fallback():
    assert get_trainer(None, 'TMCDR_MF') is MetaTrainer
    assert get_trainer(None, 'EMCDR_BPR') is ColdStartTrainer
    # the toolkit's own lookups now answer from the registry
    assert recbole_cdr.utils.get_trainer(None, 'TMCDR_CML') is MetaTrainer
    assert toolkit_quick_start.get_model('EMCDR_CML') is EMCDR
    with pytest.raises(RegistryError, match='Unknown model'):
        recbole_cdr.utils.get_trainer(None, 'NoSuchModel')


def test_model_without_trainer_is_an_error():
    class Orphan:
        pass
    MODELS._entries['Orphan'] = Orphan
    try:
        with pytest.raises(RegistryError, match="declares no trainer"):
            get_trainer(None, 'Orphan')
    finally:
        del MODELS._entries['Orphan']
    assert 'MetaTrainer' in TRAINERS


def test_toolkit_entry_point_runs_a_plugin_model(tiny_scenario):
    result = toolkit_quick_start.run_recbole_cdr(
        model='TargetPop', config_file_list=[str(tiny_scenario)], config_dict=fast_config(), saved=True)
    assert set(result) >= {'best_valid_score', 'best_valid_result', 'test_result', 'valid_score_bigger'}
    assert 0.5 < result['test_result']['uauc'] <= 1.0


def test_yaml_precedence(tmp_path, tiny_scenario):
    # overall < implementation YAML < alias YAML < dataset (scenario) file < user files < config_dict
    scenario = yaml.safe_load(tiny_scenario.read_text())
    scenario.update(meta_inner_lr=0.1, meta_group_size=4, meta_groups_per_batch=3, stopping_step=9)
    dataset_file = tmp_path / 'dataset.yaml'
    dataset_file.write_text(yaml.safe_dump(scenario))
    user_file = tmp_path / 'user.yaml'
    user_file.write_text(yaml.safe_dump({'meta_group_size': 8, 'meta_groups_per_batch': 5}))
    config = build_config('TMCDR_BPR', config_file_list=[dataset_file, user_file],
                          config_dict={'meta_groups_per_batch': 7})
    assert config['cold_user_ratio'] == 0.2            # plugin overall.yaml
    assert config['meta_first_order'] is False          # TMCDR.yaml
    assert config['base_model'] == 'BPR'                # TMCDR_BPR.yaml over TMCDR.yaml (MF)
    assert config['meta_inner_lr'] == 0.1               # dataset file over TMCDR.yaml (0.005)
    assert config['meta_group_size'] == 8               # user file over dataset file
    assert config['meta_groups_per_batch'] == 7         # config_dict over user file
    assert config['source_split'] is False              # plugin models evaluate on target only


def test_plugin_yaml_files_order():
    names = [p.name for p in plugin_yaml_files('TMCDR_CML')]
    assert names == ['overall.yaml', 'TMCDR.yaml', 'TMCDR_CML.yaml']


def test_every_registered_model_has_an_annotated_yaml():
    for name in MODELS.names():
        files = plugin_yaml_files(name)
        assert files[-1].name == f'{name}.yaml', f'{name} has no YAML of its own'
        for file in files:
            for line in file.read_text().splitlines():
                if line and not line.startswith((' ', '#')) and ':' in line:
                    assert '# (' in line, f'{file.name}: key without "# (type) meaning": {line}'


def test_unknown_dataset_lists_available():
    assert 'ml_genre' in dataset_names() and 'douban_music_book' in dataset_names()
    with pytest.raises(RegistryError, match="Unknown dataset 'douban'.*Available: .*douban_music_book"):
        dataset_config_file('douban')


@pytest.mark.parametrize('name', ['../dataset_configs/ml_genre', '../properties/overall', '/etc/hostname',
                                  'ml_genre.yaml', 'ml_genre/../ml_genre'])
def test_a_dataset_is_a_plain_name_from_dataset_configs(name):
    with pytest.raises(RegistryError, match=rf"Unknown dataset '{re.escape(name)}'.*pass it with --config_files"):
        dataset_config_file(name)
