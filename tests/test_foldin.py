"""Fold-in of the K-shot support: it lowers the K-item loss, is the K=0 representation at K=0, and is chosen per K
on the cold validation users."""

import pytest
import torch

from recbole_tmcdr.kshot import evaluate_kshot, select_per_k
from recbole_tmcdr.model.base_models import BASE_MODELS
from recbole_tmcdr.model.foldin import fold_in, support_loss, value_at_k
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.validation import ConfigError

PHASES = ["SOURCE:3", "TARGET:3", "OVERLAP:3"]


@pytest.mark.parametrize('name', ['MF', 'BPR', 'ListRankMF', 'CML'])
def test_fold_in_lowers_the_k_item_loss_of_every_base_model(name):
    base_model = BASE_MODELS.get(name)({'cml_margin': 0.5})
    generator = torch.Generator().manual_seed(0)
    items = base_model.constrain(torch.randn(30, 8, generator=generator))
    prior = base_model.constrain(torch.randn(5, 8, generator=generator))
    support = torch.randint(1, 30, (5, 3), generator=generator)
    negatives = torch.randint(1, 30, (1, 5, 3, 4), generator=generator).expand(20, -1, -1, -1)  # same every step

    def loss(users):
        return support_loss(base_model, users, items[support].reshape(15, 8), items[negatives[0]], 3)

    fitted = fold_in(base_model, prior, items, support, negatives, steps=20, lr=0.05, prior_weight=0.0)
    assert (loss(fitted) <= loss(prior) + 1e-6).all() and loss(fitted).mean() < loss(prior).mean()


def test_fold_in_is_the_prior_at_k0_or_without_steps_and_stays_near_it_with_a_strong_prior():
    base_model = BASE_MODELS.get('MF')({})
    prior, items = torch.randn(4, 6), torch.randn(20, 6)
    empty = torch.zeros(4, 0, dtype=torch.long)
    assert torch.equal(fold_in(base_model, prior, items, empty, torch.zeros(5, 4, 0, 2, dtype=torch.long), 5, 0.1, 0),
                       prior)
    support, negatives = torch.ones(4, 2, dtype=torch.long), torch.full((5, 4, 2, 2), 3)
    assert torch.equal(fold_in(base_model, prior, items, support, negatives, 0, 0.1, 0.0), prior)
    free = fold_in(base_model, prior, items, support, negatives, 5, 0.05, 0.0)
    held = fold_in(base_model, prior, items, support, negatives, 5, 0.05, 5.0)
    assert (held - prior).norm() < (free - prior).norm()


def test_a_setting_per_k_takes_the_largest_listed_k_below():
    assert value_at_k(0.1, 7) == 0.1
    per_k = {1: 0.5, 5: 0.2}
    assert [value_at_k(per_k, k) for k in (0, 1, 3, 5, 10)] == [0.5, 0.5, 0.5, 0.2, 0.2]


@pytest.mark.parametrize('key, value, message', [
    ('kshot_foldin_steps', -1, "The 'kshot_foldin_steps' parameter of EMCDR must be an int >= 0, or a mapping "
                               "{K: int >= 0}. Got -1 instead."),
    ('kshot_foldin_lr', {1: 0.0}, "The 'kshot_foldin_lr' parameter of EMCDR must be a float > 0, or a mapping "
                                  "{K: float > 0}. Got {1: 0.0} instead."),
])
def test_bad_fold_in_settings_are_one_line_errors(tiny_scenario, key, value, message):
    with pytest.raises(ConfigError) as error:
        build_config('EMCDR_MF', config_file_list=[tiny_scenario], config_dict={key: value})
    assert str(error.value) == message


def test_mapping_model_folds_in_from_f_of_u_s(pipeline):
    run = pipeline('EMCDR_MF', train_epochs=PHASES, kshot_foldin_steps=10, kshot_foldin_lr=0.5,
                   kshot_foldin_prior_weight=0.0)
    run.fit()
    model = run.model.eval()
    users = model.warm_overlap_users[:4]
    with torch.no_grad():
        assert torch.equal(model.kshot_user_representation(users, [torch.tensor([], dtype=torch.long)] * 4),
                           model.map_users(users))
        support = [torch.tensor([1, 2, 3])] * 4
        fitted = model.kshot_user_representation(users, support)
        items = model.target_item_table()
        scores, prior_scores = fitted @ items.T, model.map_users(users) @ items.T
    assert (scores[:, 1:4].mean(1) > prior_scores[:, 1:4].mean(1)).all()  # the revealed items move up


def test_target_only_floor_folds_in_from_the_mean_warm_user(pipeline):
    run = pipeline('BPR', train_epochs=['TARGET:2'], kshot_foldin_steps=5, kshot_foldin_lr=0.5)
    run.fit()
    model = run.model.eval()
    users = (~model.has_target_rows).nonzero().squeeze(-1)[1:5]  # cold users (0 is the padding id)
    with torch.no_grad():
        k0 = model.kshot_full_scores(users, [torch.tensor([], dtype=torch.long)] * 4)
        assert torch.allclose(k0, model.mean_user_scores().expand(4, -1))
        k3 = model.kshot_full_scores(users, [torch.tensor([1, 2, 3])] * 4)
    assert (k3[:, 1:4].mean(1) > k0[:, 1:4].mean(1)).all()


def test_fold_in_settings_are_chosen_per_k_on_the_validation_users(pipeline):
    run = pipeline('EMCDR_MF', train_epochs=PHASES)
    run.fit()
    candidates = [{'steps': 0}, {'steps': 10, 'lr': 0.5, 'prior_weight': 0.0}]
    chosen, results = select_per_k(run.trainer, run.valid_data, [0, 3], candidates)
    assert run.model.foldin.steps == run.config['kshot_foldin_steps']  # restored afterwards
    assert chosen[0] == candidates[0]  # at K=0 every candidate scores the same: the first is kept
    by_candidate = []
    for candidate in candidates:
        run.model.foldin.steps = candidate['steps']
        run.model.foldin.lr = candidate.get('lr', run.model.foldin.lr)
        run.model.foldin.prior_weight = candidate.get('prior_weight', run.model.foldin.prior_weight)
        by_candidate.append(evaluate_kshot(run.trainer, run.valid_data, ks=[3])[3]['ndcg@10'])
    assert results[3]['ndcg@10'] == max(by_candidate)
    assert chosen[3] == candidates[by_candidate.index(max(by_candidate))]
    assert results[3]['n_users'] + results[3]['n_excluded'] == run.config['scenario_stats']['n_cold_valid']
