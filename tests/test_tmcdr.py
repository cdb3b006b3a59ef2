"""TMCDR's meta-learning invariants: the meta-gradient against an independent float64 unrolled reference,
first-order = plain gradient at theta', frozen embeddings, inner step lowers the support loss, vmap = loop,
determinism, and checkpoints that round-trip through RecBole's load_best_model path."""

import pytest
import torch

from test_models import PHASES, run_recording_bridge_phase

META = dict(meta_group_size=6, meta_groups_per_batch=3, embedding_size=6, meta_inner_lr=0.05,
            meta_max_positives_per_user=5, train_epochs=PHASES, meta_loss_reduction='sum')


@pytest.fixture(params=['sum', 'mean'])
def meta_pipeline(pipeline, request):
    run = pipeline('TMCDR_MF', **{**META, 'meta_loss_reduction': request.param})
    run.model.double()
    run.model.set_phase('OVERLAP')
    return run


def first_meta_batch(run):
    torch.manual_seed(0)
    batch = next(iter(run.trainer.bridge_loader(run.train_data)))
    batch.interaction = {k: (v.double() if v.is_floating_point() else v) for k, v in batch.interaction.items()}
    return batch


def reference_phase_loss(model, weight, bias, batch, phase, g):
    """Independent float64 MF task loss of task g: summed BCE, f(u) = W u + b, written without the model."""
    users = batch[f'{phase}_users'][g]
    u_src = model.source_user_embedding.weight[users]
    mapped = u_src @ weight.T + bias
    rows = batch[f'{phase}_sample_user'][g]
    items = model.target_item_embedding.weight
    pos = (mapped[rows] * items[batch[f'{phase}_pos'][g]]).sum(-1)
    neg = (mapped[rows].unsqueeze(1) * items[batch[f'{phase}_neg'][g]]).sum(-1)
    per_sample = torch.log1p(torch.exp(-pos)) + torch.log1p(torch.exp(neg)).sum(-1)
    mask = batch[f'{phase}_mask'][g]
    total = (per_sample * mask).sum()
    return total if model.reduction.value == 'sum' else total / mask.sum()


def unrolled_reference(model, batch, lr, first_order=False):
    weight = model.bridge[0].weight.detach().clone().requires_grad_(True)
    bias = model.bridge[0].bias.detach().clone().requires_grad_(True)
    total = 0
    for g in range(len(batch['support_users'])):
        support = reference_phase_loss(model, weight, bias, batch, 'support', g)
        g_w, g_b = torch.autograd.grad(support, (weight, bias), create_graph=not first_order)
        total = total + reference_phase_loss(model, weight - lr * g_w, bias - lr * g_b, batch, 'query', g)
    if model.reduction.value == 'mean':  # tasks are averaged too
        total = total / len(batch['support_users'])
    return torch.autograd.grad(total, (weight, bias))


def model_meta_gradient(model, batch, vectorised=True):
    params = list(model.bridge.parameters())
    return torch.autograd.grad(model.meta_loss(batch, vectorised=vectorised), params)


def test_meta_gradient_equals_float64_unrolled_reference(meta_pipeline):
    model = meta_pipeline.model
    batch = first_meta_batch(meta_pipeline)
    ours = model_meta_gradient(model, batch)
    reference = unrolled_reference(model, batch, model.inner_lr)
    for a, b in zip(ours, reference):
        assert a.dtype == torch.float64
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)
    # and the second-order terms matter here: the first-order reference differs
    first_order = unrolled_reference(model, batch, model.inner_lr, first_order=True)
    assert not torch.allclose(ours[0], first_order[0], rtol=1e-6)


def test_first_order_equals_plain_gradient_at_adapted_theta(meta_pipeline):
    model = meta_pipeline.model
    model.first_order = True
    batch = first_meta_batch(meta_pipeline)
    ours = model_meta_gradient(model, batch)
    # plain gradient of L_b at theta'_i (theta' a leaf), summed over tasks
    weight, bias = model.bridge[0].weight.detach(), model.bridge[0].bias.detach()
    expected = [torch.zeros_like(weight), torch.zeros_like(bias)]
    for g in range(len(batch['support_users'])):
        w, b = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        g_w, g_b = torch.autograd.grad(reference_phase_loss(model, w, b, batch, 'support', g), (w, b))
        w_adapted = (weight - model.inner_lr * g_w).requires_grad_(True)
        b_adapted = (bias - model.inner_lr * g_b).requires_grad_(True)
        grads = torch.autograd.grad(reference_phase_loss(model, w_adapted, b_adapted, batch, 'query', g),
                                    (w_adapted, b_adapted))
        expected = [e + gr for e, gr in zip(expected, grads)]
    if model.reduction.value == 'mean':
        expected = [e / len(batch['support_users']) for e in expected]
    for a, b in zip(ours, expected):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)


def test_inner_step_lowers_the_support_loss(meta_pipeline):
    model = meta_pipeline.model
    batch = first_meta_batch(meta_pipeline)
    support = tuple(t[0] for t in model.task_inputs(batch, 'support'))
    params = {k: v.detach() for k, v in model.meta_parameters().items()}
    before = model.task_loss(params, *support)
    after = model.task_loss(model.adapt(params, support, steps=1), *support)
    assert after < before


def test_vmapped_and_looped_tasks_agree(meta_pipeline):
    model = meta_pipeline.model
    batch = first_meta_batch(meta_pipeline)
    assert torch.allclose(model.meta_loss(batch, vectorised=True), model.meta_loss(batch, vectorised=False))
    for a, b in zip(model_meta_gradient(model, batch, True), model_meta_gradient(model, batch, False)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_chunked_vmap_equals_one_vmap(meta_pipeline):
    model = meta_pipeline.model
    batch = first_meta_batch(meta_pipeline)
    model.vmap_chunk_size = None
    whole = model_meta_gradient(model, batch)
    model.vmap_chunk_size = 1
    for a, b in zip(whole, model_meta_gradient(model, batch)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('base', ['MF', 'BPR', 'ListRankMF', 'CML'])
def test_task_loss_equals_the_base_models_own_loss(pipeline, base):
    """task_loss scores a phase's items against all its users and keeps each sample's own user: it must
    equal the base model's per-sample loss on gathered (user, positive, negatives) embeddings."""
    run = pipeline(f'TMCDR_{base}', **META)
    model = run.model.double()
    model.set_phase('OVERLAP')
    batch = first_meta_batch(run)
    user_vecs, sample_user, items, mask = (t[0] for t in model.task_inputs(batch, 'support'))
    params = {k: v.detach() for k, v in model.meta_parameters().items()}
    ours = model.task_loss(params, user_vecs, sample_user, items, mask)
    mapped = model.base_model.constrain(model.bridge(user_vecs))[sample_user]
    item_vecs = model.target_item_vectors(items)
    per_sample = model.base_model.loss(mapped, item_vecs[:, 0], item_vecs[:, 1:])
    expected = (per_sample * mask).sum()
    assert torch.allclose(ours, expected, rtol=1e-10)


def test_pretrained_embeddings_bit_identical_through_meta_training(pipeline):
    run = pipeline('TMCDR_MF', **META)
    record = run_recording_bridge_phase(run)
    assert record['before'].keys() == record['after'].keys() and record['before']
    for name in record['before']:
        assert torch.equal(record['before'][name], record['after'][name]), name


def test_same_seed_same_result(pipeline):
    results, weights = [], []
    for _ in range(2):
        run = pipeline('TMCDR_MF', force_pretrain=True, **META)
        _, valid = run.fit()
        results.append(dict(valid))
        weights.append([p.detach().clone() for p in run.model.bridge.parameters()])
    assert results[0] == results[1]
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_checkpoint_saves_theta_and_meta_optimizer_and_round_trips(pipeline):
    run = pipeline('TMCDR_MF', **META)
    run.fit(saved=True)
    checkpoint = torch.load(run.trainer.saved_model_file, weights_only=True)
    assert {'bridge.0.weight', 'bridge.0.bias'} <= set(checkpoint['state_dict'])
    optimizer_params = checkpoint['optimizer']['param_groups'][0]['params']
    assert len(optimizer_params) == 2  # the meta-optimizer holds theta only
    assert checkpoint['optimizer']['state'], 'Adam moments of the meta-optimizer are saved'
    best = {k: v.clone() for k, v in run.model.state_dict().items()}
    with torch.no_grad():
        for p in run.model.bridge.parameters():
            p.add_(1.0)
    result = run.trainer.evaluate(run.test_data, load_best_model=True)  # RecBole's load_best_model path
    assert torch.equal(run.model.bridge[0].weight, best['bridge.0.weight'])
    assert 0 <= result['uauc'] <= 1


def test_meta_batch_groups_are_disjoint_and_masked(meta_pipeline):
    batch = first_meta_batch(meta_pipeline)
    support, query = batch['support_users'], batch['query_users']
    for g in range(len(support)):
        assert not set(support[g].tolist()) & set(query[g].tolist())
    model = meta_pipeline.model
    assert model.is_warm_overlap_user[support].all() and model.is_warm_overlap_user[query].all()
    mask = batch['support_mask']
    assert ((mask == 0) | (mask == 1)).all() and mask.sum() > 0


def test_warm_start_fits_theta_with_emcdr_objective_then_meta_trains(pipeline):
    run = pipeline('TMCDR_MF', meta_warm_start_epochs=3, **META)
    seen = []
    original = run.model.bridge_loss

    def recording(interaction):
        seen.append('warm' if 'warm_user_id' in interaction else 'meta')
        return original(interaction)
    run.model.bridge_loss = recording
    _, valid = run.fit()
    assert seen[0] == 'warm' and seen[-1] == 'meta' and seen.index('meta') > 0
    assert valid is not None and 'uauc' in valid
