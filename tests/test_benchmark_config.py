"""What configuration a benchmark run gets: its scenario file's keys win over the benchmark's own defaults."""

import os

import yaml

from recbole_tmcdr.benchmark import runner
from recbole_tmcdr.benchmark.spec import BenchmarkSpec
from recbole_tmcdr.config import default_raw_data_path
from recbole_tmcdr.quick_start import build_config


def scenario_with(tiny_scenario, directory, name, **keys):
    content = yaml.safe_load(tiny_scenario.read_text())
    content['scenario']['name'] = name
    path = directory / f'{name}.yaml'
    path.write_text(yaml.safe_dump({**content, **keys}))
    return path


def planned_configs(tmp_path, scenarios, **spec_fields):
    spec = BenchmarkSpec(scenarios=[str(s) for s in scenarios], models=['TargetPop'], seeds=[0],
                         out=str(tmp_path / 'bench'), lr_search=False, **spec_fields).validate()
    tasks = runner.plan(spec, str(tmp_path / 'bench'), spec.cache_dir or str(tmp_path / 'default_cache'))
    return {task['scenario']: task for task in tasks}


def test_a_scenario_file_key_wins_over_the_benchmark_defaults(tiny_scenario, tmp_path):
    (tmp_path / 'subset').mkdir()
    subset = scenario_with(tiny_scenario, tmp_path, 'tiny_subset', raw_data_path='subset',
                           cache_dir=str(tmp_path / 'subset_cache'))
    tasks = planned_configs(tmp_path, [subset, tiny_scenario])
    own = tasks['tiny_subset']['base_config']
    assert own['raw_data_path'] == os.path.join(os.getcwd(), 'subset')  # relative to where the benchmark starts
    assert own['cache_dir'] == str(tmp_path / 'subset_cache')
    other = tasks['tiny']['base_config']
    assert other['raw_data_path'] == default_raw_data_path()
    assert other['cache_dir'] == str(tmp_path / 'default_cache')

    task = tasks['tiny_subset']  # the run's config, as run_one builds it
    config = build_config('TargetPop', config_file_list=task['run_kwargs']['config_file_list'],
                          config_dict={**task['base_config'], 'seed': 0})
    assert config['raw_data_path'] == os.path.join(os.getcwd(), 'subset')


def test_the_users_overrides_still_win_over_the_scenario_file(tiny_scenario, tmp_path):
    subset = scenario_with(tiny_scenario, tmp_path, 'tiny_subset', raw_data_path=str(tmp_path / 'subset'))
    tasks = planned_configs(tmp_path, [subset], overrides={'raw_data_path': str(tmp_path / 'mine')},
                            cache_dir=str(tmp_path / 'my_cache'))
    assert tasks['tiny_subset']['base_config']['raw_data_path'] == str(tmp_path / 'mine')
    assert tasks['tiny_subset']['base_config']['cache_dir'] == str(tmp_path / 'my_cache')


def test_benchmark_runs_draw_no_progress_bars_into_their_logs(tiny_scenario, tmp_path):
    """show_progress is on by default (as in RecBole); the benchmark shows its own progress, so its runs turn it off."""
    assert planned_configs(tmp_path, [tiny_scenario])['tiny']['base_config']['show_progress'] is False
