"""A model of the user's own: the keys it declares, registration from a module outside the package, the entry-point
group and ``--import``."""

import logging
import sys

import pytest

from recbole_tmcdr.__main__ import main as cli_main
from recbole_tmcdr.benchmark.__main__ import main as benchmark_main
from recbole_tmcdr.benchmark.spec import BenchmarkSpec, SpecError, resolve_scenario, run_inputs
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.registry import ENTRY_POINT_GROUP, MODELS, RegistryError, import_modules, register_model
from recbole_tmcdr.validation import ConfigError, Rule


def install_distribution(site, name, entry_points):
    """A distribution's metadata as pip leaves it in site-packages (``name-1.0.dist-info``), declaring
    ``entry_points`` ({entry point name: module}) in the plugin's group."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n')
    lines = ''.join(f'{key} = {value}\n' for key, value in entry_points.items())
    (info / 'entry_points.txt').write_text(f'[{ENTRY_POINT_GROUP}]\n{lines}')


# ----- keys declared by the model
def test_declared_keys_are_checked_like_the_plugins(tiny_scenario, own_model_module, caplog):
    import_modules([own_model_module])
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


# ----- entry points and --import
def test_installed_packages_register_through_the_entry_point_group(tmp_path, monkeypatch, own_model_module):
    site = tmp_path / 'site'
    install_distribution(site, 'own-models', {'EMCDRMargin': own_model_module})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(MODELS, '_plugins_loaded', False)
    assert own_model_module not in sys.modules
    assert 'EMCDRMargin' in MODELS  # the first lookup imports the entry points' modules
    assert own_model_module in sys.modules


def test_a_broken_entry_point_is_one_error_naming_package_and_entry_point(tmp_path, monkeypatch, capsys,
                                                                          registry_restored):
    site = tmp_path / 'site'
    install_distribution(site, 'broken-models', {'Broken': 'no_such_module_of_models'})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(MODELS, '_plugins_loaded', False)
    message = ("The entry point 'Broken = no_such_module_of_models' (group recbole_tmcdr.models) of the package "
               "'broken-models' failed to load: ModuleNotFoundError: No module named 'no_such_module_of_models'. "
               'Fix or uninstall that package.')
    for _ in range(2):  # every lookup says it, not only the first
        with pytest.raises(RegistryError) as error:
            MODELS.get('EMCDR_MF')
        assert str(error.value) == message
    with pytest.raises(SystemExit) as stop:
        cli_main(['--model', 'EMCDR_MF', '--dataset', 'ml_genre'])
    assert stop.value.code == 2 and capsys.readouterr().err == f'recbole-tmcdr: error: {message}\n'


def test_a_module_that_cannot_be_imported_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(['--import', 'no_such_module_of_models', '--model', 'EMCDR_MF', '--dataset', 'ml_genre'])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.count('\n') == 1
    assert error.startswith("recbole-tmcdr: error: Cannot import the module 'no_such_module_of_models': "
                            "ModuleNotFoundError: No module named 'no_such_module_of_models'. A module given with "
                            '--import must be importable')
    with pytest.raises(SystemExit):
        benchmark_main(['--import', 'no_such_module_of_models', '--models', 'EMCDR_MF', '--scenarios', 'ml_genre',
                        '--dry-run'])
    assert "Cannot import the module 'no_such_module_of_models'" in capsys.readouterr().err


def test_benchmark_spec_imports(tmp_path, own_model_module):
    spec_file = tmp_path / 'spec.yaml'
    spec_file.write_text(f'scenarios: [ml_genre]\nmodels: [EMCDR_MF, EMCDRMargin]\nimports: [{own_model_module}]\n')
    spec = BenchmarkSpec.from_file(spec_file)
    with pytest.raises(SpecError, match="Cannot import the module 'elsewhere'"):
        spec.updated(imports=['elsewhere']).validate()
    assert spec.updated(imports=[own_model_module, 'json']).imports == [own_model_module, 'json']
    spec.validate()  # imports the module, then finds its model
    scenario = resolve_scenario('ml_genre')
    # resume compares the model's own source file; a plugin model's inputs (and hash) are as before
    assert run_inputs(scenario, 'EMCDRMargin', str(tmp_path))['user_code']
    assert 'user_code' not in run_inputs(scenario, 'EMCDR_MF', str(tmp_path))
