"""MeLU: the local update adapts the decision layers only, its meta-gradients against explicit autograd references
(float64), K = 0 is the global model, the task split, and ml_genre (attributes, time order, the quick start)."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from recbole.data.interaction import Interaction

from recbole_tmcdr import run_recbole_cdr
from recbole_tmcdr.model.melu import TASK_USER, id_tokens
from recbole_tmcdr.model.tmcdr import QUERY, SUPPORT
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.validation import ConfigError

from conftest import Pipeline, fast_config

SMALL = dict(train_epochs=['TARGET:1'], embedding_size=4, melu_layers=[6], melu_tasks_per_batch=5,
             melu_max_query=6, melu_support_size=3, melu_local_steps=2, melu_local_lr=0.5)


@pytest.fixture(scope='module')
def ml_genre_cache(tmp_path_factory):
    """One cache directory for the module's ml_genre runs: the scenario is converted once."""
    return str(tmp_path_factory.mktemp('ml_genre_cache'))


@pytest.fixture
def melu(pipeline):
    """A MeLU model (id embeddings: the tiny scenario has no attributes), in float64, and one meta-batch."""
    run = pipeline('MeLU', **SMALL)
    torch.manual_seed(0)
    batch = next(iter(run.trainer.bridge_loader(run.train_data)))
    batch = Interaction({k: v.double() if v.is_floating_point() else v for k, v in batch.interaction.items()})
    return run.model.double(), batch


def mlp(model, params, x):
    """The decision layers written out (Linear, ReLU, ..., Linear) over the parameter dict."""
    for index, layer in enumerate(model.decision):
        x = F.linear(x, params[f'{index}.weight'], params[f'{index}.bias']) if isinstance(layer, torch.nn.Linear) \
            else torch.relu(x)
    return x.squeeze(-1)


def bce_task_loss(model, params, user, items, mask):
    """BCE on a positive and its negatives, averaged over the real samples: (du,), (S, 1 + k, di), (S,)."""
    scores = mlp(model, params, torch.cat([user.expand(*items.shape[:-1], -1), items], -1))
    per_sample = F.softplus(-scores[:, 0]) + F.softplus(scores[:, 1:]).sum(-1)
    return (per_sample * mask).sum() / mask.sum().clamp(min=1.0)


def reference_meta_loss(model, batch, embeddings_in_local_steps=False, first_order=False):
    """Mean over the tasks of L_query(theta'_u), theta'_u unrolled with explicit torch.autograd.grad steps."""
    table, users = model.item_table(), model.user_vectors(batch[TASK_USER])
    theta = dict(model.decision.named_parameters())
    losses = []
    for t in range(len(users)):
        items = {phase: table[torch.cat([batch[f'{phase}_pos'][t].unsqueeze(-1), batch[f'{phase}_neg'][t]], -1)]
                 for phase in (SUPPORT, QUERY)}
        user, support_items = users[t], items[SUPPORT]
        if not embeddings_in_local_steps:
            user, support_items = user.detach(), support_items.detach()
        params = dict(theta)
        for _ in range(model.local_steps):
            loss = bce_task_loss(model, params, user, support_items, batch[f'{SUPPORT}_mask'][t])
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
            params = {name: p - model.local_lr * g for (name, p), g in zip(params.items(), grads)}
        if first_order:  # the plain gradient of the query loss at the adapted parameters
            params = {name: p.detach().requires_grad_() for name, p in params.items()}
        losses.append(bce_task_loss(model, params, users[t], items[QUERY], batch[f'{QUERY}_mask'][t]))
    return torch.stack(losses).mean(), params


def model_gradients(model, batch):
    model.zero_grad(set_to_none=True)
    model.calculate_loss(batch).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_local_update_leaves_the_embeddings_alone_and_their_meta_gradient_comes_from_the_query_loss(melu):
    model, batch = melu
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    users = batch[TASK_USER][:4]
    adapted = model.kshot_full_scores(users, [torch.tensor([1, 2, 3])] * len(users))
    assert not torch.allclose(adapted, model.kshot_full_scores(users, [torch.tensor([], dtype=torch.long)] * 4))
    model.calculate_loss(batch)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())  # nothing written in place

    got = model_gradients(model, batch)
    embeddings = [name for name in got if not name.startswith('decision.')]
    assert embeddings == ['item_ids.weight', 'user_ids.weight']
    reference, _ = reference_meta_loss(model, batch)
    expected = torch.autograd.grad(reference, [dict(model.named_parameters())[n] for n in embeddings])
    for name, g in zip(embeddings, expected):
        assert torch.allclose(got[name], g, rtol=1e-9, atol=1e-12), name
    # the test can tell: had the local steps seen the embeddings as variables, their gradient would differ
    through_steps, _ = reference_meta_loss(model, batch, embeddings_in_local_steps=True)
    other = torch.autograd.grad(through_steps, model.item_ids.weight)[0]
    assert not torch.allclose(got['item_ids.weight'], other, rtol=1e-6, atol=1e-9)


def test_second_order_meta_gradient_matches_the_float64_unrolled_reference(melu):
    model, batch = melu
    assert not model.first_order and model.local_steps == 2
    got = model_gradients(model, batch)
    reference, _ = reference_meta_loss(model, batch)
    params = dict(model.decision.named_parameters())
    expected = torch.autograd.grad(reference, list(params.values()))
    for (name, _), g in zip(params.items(), expected):
        assert torch.allclose(got[f'decision.{name}'], g, rtol=1e-9, atol=1e-12), name
    assert model.calculate_loss(batch).item() == pytest.approx(reference.item(), rel=1e-12)


def test_first_order_meta_gradient_is_the_query_gradient_at_the_adapted_parameters(melu):
    model, batch = melu
    second = model_gradients(model, batch)
    model.first_order = True
    got = model_gradients(model, batch)
    expected, n_tasks = {}, len(batch[TASK_USER])
    for t in range(n_tasks):  # per task: theta'_u, then the plain gradient of L_query at theta'_u
        task = Interaction({k: v[t:t + 1] for k, v in batch.interaction.items()})
        query_loss, adapted = reference_meta_loss(model, task, first_order=True)
        for name, g in zip(adapted, torch.autograd.grad(query_loss, list(adapted.values()))):
            expected[name] = expected.get(name, 0) + g / n_tasks
    for name, g in expected.items():
        assert torch.allclose(got[f'decision.{name}'], g, rtol=1e-9, atol=1e-12), name
    assert not torch.allclose(got['decision.0.weight'], second['decision.0.weight'], rtol=1e-6, atol=1e-9)


def test_k0_scores_are_the_global_models(melu):
    model, _ = melu
    cold = torch.tensor(sorted(set(range(1, model.target_num_users)) - set(model.warm_target_users.tolist())))[:5]
    assert len(cold) and not model.features
    empty = [torch.tensor([], dtype=torch.long)] * len(cold)
    with torch.no_grad():
        k0 = model.kshot_full_scores(cold, empty)
        full = model.full_sort_predict(Interaction({model.TARGET_USER_ID: cold})).view(len(cold), -1)
        mean_user = model.user_ids.weight[model.warm_target_users].mean(0)  # a cold user: the mean warm user
        items = model.item_ids.weight
        expected = mlp(model, dict(model.decision.named_parameters()),
                       torch.cat([mean_user.expand(len(items), -1), items], -1))
    assert torch.equal(k0, full)
    assert torch.allclose(k0, expected.expand(len(cold), -1), rtol=1e-12)
    pairs = Interaction({model.TARGET_USER_ID: cold.repeat_interleave(3),
                         model.TARGET_ITEM_ID: torch.arange(1, 4).repeat(len(cold))})
    assert torch.allclose(model.predict(pairs), k0[:, 1:4].reshape(-1), rtol=1e-12)


def test_a_task_is_one_user_support_first_k_query_the_rest(pipeline):
    run = pipeline('MeLU', **SMALL)
    loader = run.trainer.bridge_loader(run.train_data)
    users = np.array(sorted(run.model.task_rows)[:6])
    batch = loader.meta_batch(users)
    for t, user in enumerate(users):
        items = run.model.task_rows[user]
        shots = min(3, len(items) - 1)
        support = batch[f'{SUPPORT}_pos'][t][batch[f'{SUPPORT}_mask'][t] > 0]
        query = batch[f'{QUERY}_pos'][t][batch[f'{QUERY}_mask'][t] > 0]
        assert support.tolist() == items[:shots].tolist()
        rest = items[shots:].tolist()
        assert len(query) == min(6, len(rest)) and query.tolist() == [i for i in rest if i in set(query.tolist())]
    assert batch[TASK_USER].tolist() == users.tolist()


def test_bad_values_are_one_error_naming_the_key(tiny_scenario):
    with pytest.raises(ConfigError) as error:
        build_config('MeLU', config_file_list=[tiny_scenario], config_dict={'melu_local_lr': -1})
    assert str(error.value) == "The 'melu_local_lr' parameter of MeLU must be a float > 0. Got -1 instead."
    with pytest.raises(ConfigError, match=r"^The 'melu_loss' parameter of MeLU must be one of 'bce', 'bpr'\. "):
        build_config('MeLU', config_file_list=[tiny_scenario], config_dict={'melu_loss': 'mse'})


def test_ml_genre_uses_attributes_and_time_ordered_tasks(ml_genre_cache):
    from recbole_tmcdr.config import dataset_config_file
    from recbole_tmcdr.data.raw_sources.movielens_genre import recbole_ml100k_dir
    run = Pipeline('MeLU', [dataset_config_file('ml_genre')], cache_dir=ml_genre_cache, **SMALL)
    model = run.model
    assert model.features and model.item_table().shape[1] == 3 * 4 and model.user_vectors(
        model.warm_target_users[:2]).shape == (2, 3 * 4)
    raw = pd.read_csv(f'{recbole_ml100k_dir()}/ml-100k.inter', sep='\t', dtype=str)
    time = {(u, i): float(t) for u, i, t in raw.iloc[:, [0, 1, 3]].itertuples(index=False)}
    target = run.train_data.dataset.target_domain_dataset
    users, items = (id_tokens(target, field, 2000) for field in (target.uid_field, target.iid_field))
    for user in list(model.task_rows)[:50]:
        times = [time[users[user], items[i].split(':')[1]] for i in model.task_rows[user]]
        assert times == sorted(times)
    # the attributes are the user's own: two users share their codes iff they share age decade, gender, occupation
    profile = pd.read_csv(f'{recbole_ml100k_dir()}/ml-100k.user', sep='\t', dtype=str).set_index('user_id:token')
    attributes = {u: (int(profile.loc[users[u], 'age:token']) // 10, *profile.loc[users[u]].iloc[1:3])
                  for u in list(model.task_rows)[:80]}
    for u, a in attributes.items():
        for v, b in attributes.items():
            assert torch.equal(model.user_codes[u], model.user_codes[v]) == (a == b)


def test_a_short_ml_genre_run_returns_cold_test_and_k_shot_metrics(ml_genre_cache):
    result = run_recbole_cdr(model='MeLU', dataset='ml_genre', saved=False, config_dict=fast_config(
        train_epochs=['TARGET:1'], embedding_size=8, melu_layers=[16], kshot=[0, 3], cache_dir=ml_genre_cache))
    test = result['test_result']
    assert {'uauc', 'ndcg@10', 'recall@10'} <= set(test) and 0.5 < test['uauc'] <= 1
    assert result['kshot_results'][0]['ndcg@10'] == pytest.approx(test['ndcg@10'])  # K = 0 is the global model
    assert 0 <= result['kshot_results'][3]['ndcg@10'] <= 1 and result['kshot_results'][3]['n_users'] > 0
