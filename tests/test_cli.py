"""The command line: --help lists models and datasets; a tiny run prints cold-user metrics."""

import json
import subprocess
import sys

from recbole_tmcdr.__main__ import main


def test_help_lists_models_and_datasets():
    out = subprocess.run([sys.executable, '-m', 'recbole_tmcdr', '--help'], capture_output=True, text=True,
                         check=True).stdout
    assert 'TMCDR_MF' in out and 'EMCDR_MFori' in out and 'ml_genre' in out and 'douban_music_book' in out


def test_console_script_is_installed():
    import shutil
    assert shutil.which('recbole-tmcdr') or (sys.prefix and __import__('os').path.exists(
        __import__('os').path.join(sys.prefix, 'bin', 'recbole-tmcdr')))


def test_tiny_cli_run(tiny_scenario, capsys):
    main(['--model', 'EMCDR_MF', '--config_files', str(tiny_scenario), '--no_save',
          '--train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:2"]', '--embedding_size=8', '--state=WARNING'])
    printed = capsys.readouterr().out
    result = json.loads(printed[printed.index('{'):])
    assert result['model'] == 'EMCDR_MF'
    assert set(result['cold_test']) >= {'uauc', 'gauc', 'ndcg@10', 'recall@10', 'hit@10', 'mrr@10'}


def test_a_settings_error_is_one_line_with_exit_code_2(tiny_scenario, capsys):
    import pytest
    from recbole_tmcdr.validation import ConfigError
    args = ['--model', 'EMCDR_MF', '--config_files', str(tiny_scenario), '--train_batch_size=-5']
    with pytest.raises(SystemExit) as stop:
        main(args)
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.count('\n') == 1
    assert error.startswith("recbole-tmcdr: error: The 'train_batch_size' parameter") and 'Traceback' not in error
    with pytest.raises(ConfigError):
        main(args + ['--debug'])
