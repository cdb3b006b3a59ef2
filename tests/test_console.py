"""What a user sees on the console: RecBole's progress default, progress of data conversion and K-shot, a config
dump and dataset summary that show the cold split really used."""

import pytest

from conftest import fast_config
from recbole_tmcdr.quick_start import build_config, describe_dataset, run_recbole_cdr
from recbole_tmcdr.validation import ConfigError


def test_progress_bars_are_on_by_default_as_in_recbole(tiny_scenario):
    assert build_config('EMCDR_MF', config_file_list=[tiny_scenario])['show_progress'] is True


def test_the_config_dump_shows_the_cold_split_instead_of_recboles_unused_default(tiny_scenario):
    config = build_config('EMCDR_MF', config_file_list=[tiny_scenario], config_dict=fast_config())
    stats = config['scenario_stats']
    cold = config['eval_args']['split']['COLD']
    assert cold == {'cold_user_ratio': 0.2, 'cold_valid_fraction': 0.5, 'n_warm_overlap': stats['n_warm_overlap'],
                    'n_cold_valid': stats['n_cold_valid'], 'n_cold_test': stats['n_cold_test']}
    assert "'COLD'" in str(config) and "'RS'" not in str(config)


def test_a_split_set_by_the_user_is_an_error_naming_the_keys_that_decide_it(tiny_scenario):
    with pytest.raises(ConfigError, match="eval_args.*without 'split'.*cold_user_ratio"):
        build_config('EMCDR_MF', config_file_list=[tiny_scenario],
                     config_dict=fast_config(eval_args={'mode': 'full', 'split': {'RS': [0.8, 0.1, 0.1]}}))


def test_the_dataset_summary_counts_overlapping_users_and_items_without_the_padding_id(pipeline):
    built = pipeline('EMCDR_MF')
    stats = built.config['scenario_stats']
    text = describe_dataset(built.dataset, stats)
    assert f"Num of overlapped user: {stats['n_overlap']} (warm {stats['n_warm_overlap']}" in text
    assert 'Num of overlapped item: 0' in text  # the two domains' items are distinct
    assert built.dataset.num_overlap_item == 1  # recbole-cdr's own count includes the padding item


def test_conversion_and_kshot_show_progress_bars_when_asked(tiny_scenario, capsys):
    config = fast_config(show_progress=True, kshot=[0, 1], train_epochs=['SOURCE:1', 'TARGET:1', 'OVERLAP:1'],
                         state='WARNING')
    run_recbole_cdr('EMCDR_MF', config_file_list=[str(tiny_scenario)], config_dict=config, saved=False)
    err = capsys.readouterr().err
    assert 'Converting' in err and 'K-shot evaluation' in err and 'Train' in err
    config.update(show_progress=False, seed=8)  # another seed: the conversion runs again
    run_recbole_cdr('EMCDR_MF', config_file_list=[str(tiny_scenario)], config_dict=config, saved=False)
    err = capsys.readouterr().err
    assert 'Converting' not in err and 'K-shot evaluation' not in err and 'Train' not in err
