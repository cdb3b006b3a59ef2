"""A model of the user's own: the keys it declares."""

import importlib
import logging

import pytest

from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.registry import MODELS, register_model
from recbole_tmcdr.validation import ConfigError, Rule


# ----- keys declared by the model
def test_declared_keys_are_checked_like_the_plugins(tiny_scenario, own_model_module, caplog):
    importlib.import_module(own_model_module)
    with pytest.raises(ConfigError) as error:
        build_config('EMCDRMargin', config_file_list=[tiny_scenario], config_dict={'margin': -1})
    assert str(error.value) == "The 'margin' parameter of EMCDRMargin must be a float > 0. Got -1 instead."
    with pytest.raises(ConfigError, match="The 'mapping_activation' parameter of EMCDRMargin must be one of"):
        build_config('EMCDRMargin', config_file_list=[tiny_scenario], config_dict={'margin': 1.0,
                                                                                    'mapping_activation': 'gelu'})
    with caplog.at_level(logging.WARNING):
        config = build_config('EMCDRMargin', config_file_list=[tiny_scenario], config_dict={'margin': 0.5})
    assert config['margin'] == 0.5 and 'Did you mean' not in caplog.text  # before: "Did you mean 'cml_margin'?"
    with caplog.at_level(logging.WARNING):
        build_config('EMCDRMargin', config_file_list=[tiny_scenario], config_dict={'margin': 0.5, 'margni': 1})
    assert "Unknown parameter 'margni' (ignored by RecBole). Did you mean 'margin'?" in caplog.text


def test_config_rules_must_hold_rules(registry_restored):
    with pytest.raises(ConfigError, match=r"Broken.config_rules must map each key name to a Rule"):
        @register_model()
        class Broken:
            config_rules = {'margin': 'float'}
    assert 'Broken' not in MODELS

    @register_model()
    class Fine:
        config_rules = {'margin': Rule('float')}
    assert MODELS.get('Fine') is Fine
