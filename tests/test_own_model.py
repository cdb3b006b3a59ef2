"""A model of the user's own: the keys it declares, registration from a module outside the package, the entry-point
group, ``--import``, and the README's "Add your own model" section, run as it is written."""

import configparser
import json
import logging
import re
import shlex
import sys
from pathlib import Path

import pytest

from recbole_tmcdr.__main__ import main as cli_main
from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark.__main__ import main as benchmark_main
from recbole_tmcdr.benchmark.search_space import model_search_space
from recbole_tmcdr.benchmark.inputs import run_inputs
from recbole_tmcdr.benchmark.spec import BenchmarkSpec, SpecError, resolve_scenario
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.registry import ENTRY_POINT_GROUP, MODELS, RegistryError, import_modules, register_model
from recbole_tmcdr.validation import ConfigError, Rule

README = Path(__file__).resolve().parents[1] / 'README.md'
FEW_EPOCHS = ['--train_epochs=["SOURCE:1","TARGET:1","OVERLAP:1"]', '--embedding_size=8', '--state=WARNING']


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
    with pytest.raises(ConfigError) as error:  # the module ships no YAML: the key has no default
        build_config('EMCDRMargin', config_file_list=[tiny_scenario])
    assert str(error.value) == ("The 'margin' parameter of EMCDRMargin must be a float > 0. Got None instead (null or "
                                "not set: set it, or give it a default in the model's YAML).")
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



def test_resume_compares_the_source_of_the_models_trainer_too(tmp_path, registry_restored, monkeypatch):
    from recbole_tmcdr.registry import TRAINERS
    monkeypatch.setattr(TRAINERS, '_entries', dict(TRAINERS._entries))
    trainer_source = ('from recbole_tmcdr.registry import register_trainer\n'
                      'from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer\n\n\n'
                      '@register_trainer\nclass OwnTrainer(ColdStartTrainer):\n    pass\n')
    (tmp_path / 'own_trainer.py').write_text(trainer_source)
    (tmp_path / 'own_trained_model.py').write_text(
        'import own_trainer  # noqa: F401\nfrom recbole_tmcdr import register_model\n'
        'from recbole_tmcdr.model.emcdr import EMCDR\n\n\n@register_model()\nclass EMCDRTrained(EMCDR):\n'
        "    trainer = 'OwnTrainer'\n    yaml_bases = ('EMCDR', 'EMCDR_MF')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import_modules(['own_trained_model'])
    scenario = resolve_scenario('ml_genre')
    before = run_inputs(scenario, 'EMCDRTrained', str(tmp_path))['user_code']
    (tmp_path / 'own_trainer.py').write_text(trainer_source + '    # tuned\n')
    assert run_inputs(scenario, 'EMCDRTrained', str(tmp_path))['user_code'] != before
    for module in ('own_trainer', 'own_trained_model'):
        sys.modules.pop(module, None)


def test_a_model_without_a_source_file_is_never_reused(registry_restored, monkeypatch):
    # a class typed into an interpreter: inspect finds no file, so resume cannot compare its code (before: OSError)
    monkeypatch.delattr(sys.modules['__main__'], '__file__', raising=False)  # as in an interactive session
    namespace = {}
    exec('from recbole_tmcdr import register_model\nfrom recbole_tmcdr.model.emcdr import EMCDR\n'
         '@register_model()\nclass EMCDRTyped(EMCDR):\n    pass\n', {'__name__': '__main__'}, namespace)
    scenario = resolve_scenario('ml_genre')
    first, second = (run_inputs(scenario, 'EMCDRTyped', '.')['user_code'] for _ in range(2))
    assert first != second and first[0].startswith('no source file, never reused')

# ----- the README section, as written
def readme_blocks(title):
    """(language, code) of the fenced blocks of a README section."""
    text = README.read_text(encoding='utf-8')
    start = text.index(f'\n## {title}\n')
    section = text[start:text.find('\n## ', start + 1)]
    return re.findall(r'```(\w+)\n(.*?)```', section, re.S)


def test_the_readme_section_runs_as_written(tmp_path, monkeypatch, capsys, caplog, request, registry_restored):
    blocks = {}
    for language, code in readme_blocks('Add your own model'):
        blocks.setdefault(language, []).append(code)
    (module, usage), (yaml_file,), (commands,), (setup_cfg,) = (blocks[k] for k in ('python', 'yaml', 'bash', 'ini'))
    # the model's files, named by their first line, in the directory the user runs from
    for code in (module, yaml_file):
        (tmp_path / code.splitlines()[0].lstrip('# ').split(',')[0]).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop('my_emcdr', None))
    plugin_models = dict(MODELS._entries)

    # the command lines, with fewer epochs and one seed (the single run's: its split and pre-training are reused):
    # --import registers the model
    for line in commands.strip().splitlines():
        python, dash_m, program, *args = shlex.split(line)
        assert [python, dash_m] == ['python', '-m']
        if program == 'recbole_tmcdr':
            cli_main(args + FEW_EPOCHS + ['--no_save'])
            printed = capsys.readouterr().out
            assert json.loads(printed[printed.index('{'):])['model'] == 'EMCDRHuber'
        else:
            assert program == 'recbole_tmcdr.benchmark'
            assert benchmark_main(args + ['--seeds', '2022', '--no-lr-search', '--jobs', '1', '--out', 'bench',
                                          '--no-progress', *FEW_EPOCHS]) == 0
            lines = results_io.load_records('bench/results.jsonl')
            assert sorted(r['model'] for r in lines) == ['EMCDRHuber', 'EMCDR_MF']
            capsys.readouterr()

    # what the section says of the key and the YAML
    assert model_search_space('EMCDRHuber') == {'learning_rate': [0.001, 0.01], 'huber_delta': [0.03, 0.1, 0.3]}
    assert build_config('EMCDRHuber', 'ml_genre')['huber_delta'] == 0.1
    with pytest.raises(SystemExit):
        cli_main(['--import', 'my_emcdr', '--model', 'EMCDRHuber', '--dataset', 'ml_genre', '--huber_delta=-1'])
    assert ("recbole-tmcdr: error: The 'huber_delta' parameter of EMCDRHuber must be a float > 0. Got -1 instead.\n"
            == capsys.readouterr().err)
    with caplog.at_level(logging.WARNING):
        build_config('EMCDRHuber', 'ml_genre', config_dict={'huber_detla': 0.5})
    assert "Did you mean 'huber_delta'?" in caplog.text

    # the Python lines, as `python run.py --train_epochs=...` runs them
    monkeypatch.setattr(sys, 'argv', ['run.py', *FEW_EPOCHS])
    namespace = {}
    exec(compile(usage, 'README.md', 'exec'), namespace)
    assert 0 <= namespace['result']['test_result']['ndcg@10'] <= 1

    # installed as a package with the section's entry point, the model needs no import
    monkeypatch.setattr(MODELS, '_entries', plugin_models)
    sys.modules.pop('my_emcdr')
    setup = configparser.ConfigParser()
    setup.read_string(setup_cfg)
    declared = [line.partition('=') for line in setup['options.entry_points'][ENTRY_POINT_GROUP].splitlines() if line]
    install_distribution(tmp_path / 'site', 'my-emcdr', {name.strip(): value.strip() for name, _, value in declared})
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    monkeypatch.setattr(MODELS, '_plugins_loaded', False)
    assert MODELS.get('EMCDRHuber').__module__ == 'my_emcdr'
