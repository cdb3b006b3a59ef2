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


def test_only_runs_a_model_on_its_scenarios_and_the_report_does_not_miss_the_rest(tiny_scenario, tmp_path):
    import pytest
    from recbole_tmcdr.benchmark import report as report_mod
    from recbole_tmcdr.benchmark.spec import SpecError
    other = scenario_with(tiny_scenario, tmp_path, 'tiny_other')
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario), str(other)], models=['TargetPop', 'ContentGenre'],
                         seeds=[0, 1], lr_search=False, only={'ContentGenre': [str(other)]}).validate()
    assert spec.only == {'ContentGenre': ['tiny_other']}  # given as in `scenarios`, kept as the label
    tasks = runner.plan(spec, str(tmp_path / 'bench'), str(tmp_path / 'cache'))
    assert [t['run_id'] for t in tasks] == ['tiny/TargetPop/seed0', 'tiny/TargetPop/seed1',
                                            'tiny_other/TargetPop/seed0', 'tiny_other/TargetPop/seed1',
                                            'tiny_other/ContentGenre/seed0', 'tiny_other/ContentGenre/seed1']
    finished = [{'scenario': t['scenario'], 'model': t['model'], 'seed': t['seed'], 'cold_test': {'uauc': .7}}
                for t in tasks[:-1]]
    agg = report_mod.aggregate(finished)
    agg.stale_checked = True
    text = report_mod.coverage_text(agg, {**spec.as_dict(), 'scenario_labels': ['tiny', 'tiny_other']})
    assert text.splitlines() == [
        '5 of 6 planned runs (2 scenarios x 2 models x 2 seeds; ContentGenre on tiny_other only) are finished.',
        'Missing (the command above runs exactly these and keeps the rest):', '- tiny_other: ContentGenre (seed 1)']
    for only, message in (({'EMCDR_MF': ['tiny']}, "only: 'EMCDR_MF' is not one of the spec's models "
                                                   r"\(TargetPop, ContentGenre\)"),
                          ({'ContentGenre': ['ml_genre']}, r"only: ContentGenre must list some of the spec's "
                                                           r"scenarios \(tiny, tiny_other\). Got \['ml_genre'\]")):
        with pytest.raises(SpecError, match=message):
            BenchmarkSpec(scenarios=[str(tiny_scenario), str(other)], models=['TargetPop', 'ContentGenre'],
                          only=only).validate()


def test_a_command_line_subset_of_a_spec_with_only(tiny_scenario, tmp_path):
    # --models / --scenarios narrow a spec whose `only` names the others: before, "only: 'ContentGenre' is not one
    # of the spec's models" stopped e.g. `--models MeLU` on the cold-to-warm spec
    import pytest
    from recbole_tmcdr.benchmark.spec import SpecError
    other = scenario_with(tiny_scenario, tmp_path, 'tiny_other')
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario), str(other)], models=['TargetPop', 'ContentGenre'],
                         seeds=[0], lr_search=False, only={'ContentGenre': [str(other)]})
    assert spec.updated(models=['TargetPop']).validate().only == {}
    narrowed = spec.updated(scenarios=[str(tiny_scenario)]).validate()
    assert narrowed.only == {'ContentGenre': ['tiny_other']} and 'narrowed_from' not in narrowed.as_dict()
    assert [t['run_id'] for t in runner.plan(narrowed, str(tmp_path / 'bench'), str(tmp_path / 'cache'))] == [
        'tiny/TargetPop/seed0']  # ContentGenre runs on none of the selected scenarios
    with pytest.raises(SpecError, match="only: 'EMCDR_MF' is not one of the spec's models"):  # typos still caught
        spec.updated(only={'EMCDR_MF': [str(other)]}, models=['TargetPop']).validate()
