"""The K-router: per K the method best on VALIDATION, popularity where the routed scores are degenerate."""

import pytest
import torch

from recbole_tmcdr.router import RoutedScorer, degenerate_users, route_per_k, routed_results


def metrics(ndcg):
    return {'ndcg@10': ndcg, 'n_users': 10}


# validation favours EMCDR at K=0, fold-in CF at K=3, content at K=10; the test scores rank the other way round
VALID = {'EMCDR_MF': {0: metrics(.30), 3: metrics(.31), 10: metrics(.20)},
         'BPR': {0: metrics(.10), 3: metrics(.35), 10: metrics(.30)},
         'ContentGenre': {0: metrics(.20), 3: metrics(.25), 10: metrics(.40)}}
TEST = {'EMCDR_MF': {0: metrics(.10), 3: metrics(.50), 10: metrics(.90)},
        'BPR': {0: metrics(.90), 3: metrics(.10), 10: metrics(.50)},
        'ContentGenre': {0: metrics(.50), 3: metrics(.90), 10: metrics(.10)}}


def test_router_picks_per_k_from_validation_only():
    assert route_per_k(VALID) == {0: 'EMCDR_MF', 3: 'BPR', 10: 'ContentGenre'}
    routed = routed_results(VALID, TEST)
    assert {k: r['method'] for k, r in routed.items()} == {0: 'EMCDR_MF', 3: 'BPR', 10: 'ContentGenre'}
    assert [routed[k]['test']['ndcg@10'] for k in (0, 3, 10)] == [.10, .10, .10]  # test scores are only reported


def test_a_k_a_method_did_not_evaluate_does_not_count_for_it():
    valid = {'A': {5: {'n_users': 0}}, 'B': {5: metrics(.1)}}
    assert route_per_k(valid) == {5: 'B'}


def test_degenerate_scores_are_near_constant_or_not_finite():
    scores = torch.tensor([[0.1, 0.5, 0.3],              # a ranking
                           [0.0, 0.0, 0.0],              # an empty content profile
                           [2.0, 2.0 + 1e-9, 2.0],       # near-constant
                           [0.1, float('nan'), 0.2],     # broken
                           [-float('inf'), 0.3, 0.4]])   # a masked item is not degenerate
    assert degenerate_users(scores).tolist() == [False, True, True, True, False]


class Fixed(torch.nn.Module):
    def __init__(self, rows):
        super().__init__()
        self.rows = rows

    def kshot_full_scores(self, users, support):
        return self.rows[users]


def test_router_serves_the_choice_and_falls_back_to_popularity_per_user():
    good = Fixed(torch.tensor([[0., 3., 2., 1.], [0., 1., 1., 1.]]))   # user 1: constant scores
    other = Fixed(torch.tensor([[0., 1., 2., 3.], [0., 1., 2., 3.]]))
    popularity = Fixed(torch.tensor([[0., 9., 8., 7.], [0., 9., 8., 7.]]))
    router = RoutedScorer({'good': good, 'other': other}, {0: 'good', 3: 'other'}, popularity)
    users = torch.tensor([0, 1])
    at_k0 = router.kshot_full_scores(users, [torch.tensor([], dtype=torch.long)] * 2)
    assert at_k0.tolist() == [[0., 3., 2., 1.], [0., 9., 8., 7.]]
    assert router.kshot_counters == {'n_fallback': 1}
    at_k5 = router.kshot_full_scores(users, [torch.tensor([1, 2, 3, 1, 2])] * 2)  # K=5 takes K=3's choice
    assert at_k5.tolist() == [[0., 1., 2., 3.]] * 2


def test_router_refuses_a_choice_that_is_not_a_candidate():
    with pytest.raises(ValueError, match=r"The router chose \['X'\], which are not candidates"):
        RoutedScorer({'A': None}, {0: 'X'}, None)


def test_router_end_to_end_on_one_split(pipeline, tiny_scenario):
    from recbole_tmcdr.kshot import evaluate_kshot
    runs = {'TargetPop': pipeline('TargetPop'),
            'ContentGenre': pipeline('ContentGenre', content_item_file=str(tiny_scenario.parent / 'genres.csv'))}
    ks = [0, 3]
    valid = {name: evaluate_kshot(run.trainer, run.valid_data, ks) for name, run in runs.items()}
    test = {name: evaluate_kshot(run.trainer, run.test_data, ks) for name, run in runs.items()}
    choice = route_per_k(valid)
    router = RoutedScorer({name: run.model for name, run in runs.items()}, choice, runs['TargetPop'].model)
    routed = evaluate_kshot(runs['TargetPop'].trainer, runs['TargetPop'].test_data, ks, model=router)
    for k in ks:
        assert routed[k]['ndcg@10'] == pytest.approx(test[choice[k]][k]['ndcg@10'])  # no user is degenerate here
        assert routed[k]['n_fallback'] == 0
