"""Start-up validation of plugin parameters."""

import logging

import pytest

from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.validation import ConfigError


@pytest.mark.parametrize('key, value, message', [
    ('meta_inner_lr', -1, "The 'meta_inner_lr' parameter of TMCDR must be a float >= 0. Got -1 instead."),
    ('meta_loss_reduction', 'avg', "The 'meta_loss_reduction' parameter of TMCDR must be one of 'sum', 'mean'. Got 'avg' instead."),
    ('meta_group_size', 1, "The 'meta_group_size' parameter of TMCDR must be an int >= 2. Got 1 instead."),
    ('cold_user_ratio', 1.5, "The 'cold_user_ratio' parameter of recbole-tmcdr must be a float in (0, 1). Got 1.5 instead."),
    ('embedding_size', 0, "The 'embedding_size' parameter of recbole-tmcdr must be an int in [1, 4096]. Got 0 instead."),
    ('pretrain_users', 'warm', "The 'pretrain_users' parameter of TMCDR must be one of 'all', 'overlap'. Got 'warm' instead."),
    ('base_model', 'NCF', "The 'base_model' parameter of TMCDR must be one of 'MF', 'BPR', 'ListRankMF', 'CML'. Got 'NCF' instead."),
    ('kshot', [1, -3], "The 'kshot' parameter of recbole-tmcdr must be a list of integers >= 0 or null. Got [1, -3] instead."),
    ('meta_first_order', 'yes', "The 'meta_first_order' parameter of TMCDR must be a bool. Got 'yes' instead."),
])
def test_bad_values_are_errors_naming_key_rule_and_value(tiny_scenario, key, value, message):
    with pytest.raises(ConfigError) as error:
        build_config('TMCDR_MF', config_file_list=[tiny_scenario], config_dict={key: value})
    assert str(error.value) == message


def test_tmcdr_keys_are_not_checked_for_other_models(tiny_scenario):
    build_config('EMCDR_MF', config_file_list=[tiny_scenario], config_dict={'state': 'WARNING'})


def test_misspelt_key_warns_with_suggestion(tiny_scenario, caplog):
    with caplog.at_level(logging.WARNING):
        build_config('TMCDR_MF', config_file_list=[tiny_scenario], config_dict={'meta_inner_lrr': 0.1})
    assert "Unknown parameter 'meta_inner_lrr' (ignored by RecBole). Did you mean 'meta_inner_lr'?" in caplog.text


@pytest.mark.parametrize('name', ['../../etc', 'a/b', '.hidden', 'x..y'])
def test_scenario_name_cannot_escape_the_cache_dir(tiny_scenario, name):
    import yaml
    config = yaml.safe_load(tiny_scenario.read_text())
    config['scenario']['name'] = name
    with pytest.raises(ConfigError, match='names a directory inside cache_dir'):
        build_config('TargetPop', config_dict=config)
