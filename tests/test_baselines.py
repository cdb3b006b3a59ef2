"""The paper's baselines (merged-domain CF, CMF, CST, SSCDR), PTUPCDR and RecBole's general models under the
cold-start protocol: end-to-end runs, and the one property that defines each model."""

import copy

import pytest
import torch

import recbole_tmcdr
import recbole_tmcdr.trainer.joint_trainer  # noqa: F401  (registers JointTrainer until trainer/__init__ does)
import recbole_tmcdr.trainer.ptupcdr_trainer  # noqa: F401  (registers PTUPCDRTrainer until trainer/__init__ does)
from recbole_cdr.utils import train_mode2state
from recbole_tmcdr.model.cmf import CMF
from recbole_tmcdr.model.merged_cf import MergedCF
from recbole_tmcdr.model.recbole_general import SUPPORTED, RecBoleGeneralAdapter, unsupported_message
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import MODELS
from recbole_tmcdr.validation import ConfigError

from conftest import fast_config

PRETRAIN = ["SOURCE:2", "TARGET:2"]

# model -> train_epochs (and extra settings) of a quick end-to-end run
RUNS = {
    'BPR_merged': dict(train_epochs=["BOTH:3"]),
    'ListRankMF_merged': dict(train_epochs=["BOTH:2"]),
    'CML_merged': dict(train_epochs=["BOTH:2"]),
    'CMF': dict(train_epochs=["BOTH:3"]),
    'CST': dict(train_epochs=["SOURCE:2", "TARGET:3"]),
    'SSCDR': dict(train_epochs=PRETRAIN + ["OVERLAP:2"]),
    'PTUPCDR': dict(train_epochs=PRETRAIN + ["OVERLAP:3"]),
    'Pop': dict(),
    'ItemKNN': dict(),
    'EASE': dict(),
    'BPR': dict(train_epochs=["TARGET:2"]),
    'LightGCN': dict(train_epochs=["TARGET:2"]),
    'NGCF': dict(train_epochs=["TARGET:1"]),
    'NeuMF': dict(train_epochs=["TARGET:1"], mf_embedding_size=8, mlp_embedding_size=8, mlp_hidden_size=[16]),
    'MultiVAE': dict(train_epochs=["TARGET:1"], mlp_hidden_size=[32], latent_dimension=8),
}


def batch_of(run, phase):
    """First training batch of RecBole-CDR's loader in ``phase`` mode (the loader is left at the epoch start)."""
    run.train_data.set_mode(train_mode2state[phase.value])
    batch = next(iter(run.train_data))
    run.train_data.reinit_pr_after_map()
    return batch


def cold_users(run):
    return torch.cat([torch.as_tensor(data.dataset.inter_feat[run.model.TARGET_USER_ID]).unique()
                      for data in (run.valid_data, run.test_data)])


def test_every_recbole_general_model_is_registered_or_explained():
    assert not set(RUNS) - set(MODELS.names())
    assert set(SUPPORTED) >= {'Pop', 'BPR', 'LightGCN', 'NeuMF', 'ItemKNN'}
    for name in SUPPORTED:
        assert MODELS.get(name) is RecBoleGeneralAdapter
    message = unsupported_message('RecVAE')
    assert 'RecVAETrainer' in message and 'Supported RecBole models: Pop, ItemKNN, BPR' in message


@pytest.mark.parametrize('model', list(RUNS))
def test_trains_and_evaluates_on_cold_users(model, tiny_scenario):
    result = recbole_tmcdr.run_recbole_cdr(model=model, config_file_list=[tiny_scenario],
                                           config_dict=fast_config(**RUNS[model]), saved=False)
    for split in ('best_valid_result', 'test_result'):
        metrics = result[split]
        assert 0.0 <= metrics['uauc'] <= 1.0 and 0.0 <= metrics['ndcg@10'] <= 1.0, (model, split, metrics)


# ----- merged-domain CF and CMF
def test_cmf_shares_one_user_table_across_both_domain_losses(pipeline):
    run = pipeline('CMF', train_epochs=["BOTH:1"])
    model = run.model
    assert type(model) is CMF and isinstance(model, MergedCF)
    user_parameters = [name for name, _ in model.named_parameters() if 'user' in name]
    assert user_parameters == ['user_embedding.weight']
    model.set_phase(Phase.BOTH)
    batch = batch_of(run, Phase.BOTH)
    touched = {}
    for domain, item_table in ((Phase.SOURCE, model.source_item_embedding),
                               (Phase.TARGET, model.target_item_embedding)):
        model.zero_grad(set_to_none=True)
        model.domain_loss(batch, domain).backward()  # one domain's rows only
        grad = model.user_embedding.weight.grad
        prefix = 'SOURCE' if domain == Phase.SOURCE else 'TARGET'
        users = batch[getattr(model, f'{prefix}_USER_ID')].unique()
        assert grad is not None and grad[users].abs().sum(-1).gt(0).all(), f'{domain}: no gradient in the shared table'
        other = model.target_item_embedding if domain == Phase.SOURCE else model.source_item_embedding
        assert other.weight.grad is None or not other.weight.grad.any(), f'{domain} loss reached the other item table'
        assert item_table.weight.grad.any()
        touched[domain] = set(users.tolist())
    overlap = touched[Phase.SOURCE] & touched[Phase.TARGET]
    assert overlap, 'the batch should hold users present in both domains'  # same row, same Parameter


@pytest.mark.parametrize('model', ['CMF', 'BPR_merged'])
def test_joint_loss_is_the_weighted_sum_of_the_domain_losses(pipeline, model):
    run = pipeline(model, train_epochs=["BOTH:1"])
    run.model.set_phase(Phase.BOTH)
    batch = batch_of(run, Phase.BOTH)
    source_weight, target_weight = run.model.domain_weights()
    expected = (source_weight * run.model.domain_loss(batch, Phase.SOURCE)
                + target_weight * run.model.domain_loss(batch, Phase.TARGET))
    assert torch.allclose(run.model.calculate_loss(batch), expected, rtol=1e-6)


def test_merged_cf_cold_users_learn_from_source_rows_only(pipeline):
    run = pipeline('BPR_merged', train_epochs=["BOTH:2"])
    cold = cold_users(run)
    target_train_users = torch.as_tensor(run.train_data.target_dataset.inter_feat[run.model.TARGET_USER_ID])
    assert not torch.isin(target_train_users, cold).any()
    before = run.model.user_embedding.weight[cold].detach().clone()
    run.fit()
    assert not torch.equal(before, run.model.user_embedding.weight[cold].detach())  # moved through source rows
    assert run.model.item_embedding is run.model.item_table(Phase.SOURCE) is run.model.item_table(Phase.TARGET)


def test_merged_cf_rejects_other_phases(pipeline):
    with pytest.raises(ConfigError, match="must list the phases BOTH in this order"):
        pipeline('CML_merged', train_epochs=["SOURCE:1", "BOTH:1"])


# ----- CST
def test_cst_cold_user_is_its_source_factor_and_target_starts_from_source(pipeline, tmp_path):
    run = pipeline('CST', train_epochs=["SOURCE:2", "TARGET:2"])
    model, seen = run.model, {}
    set_phase = model.set_phase

    def recording(phase):
        set_phase(phase)
        if model.phase == Phase.TARGET:
            seen['start'] = model.target_user_embedding.weight.detach().clone()
    model.set_phase = recording
    run.fit()
    overlapped = model.overlapped_num_users  # ids [0, overlapped) are the same users in both tables
    assert torch.equal(seen['start'][:overlapped], model.source_user_embedding.weight.detach()[:overlapped])
    cold = cold_users(run)
    assert torch.equal(model.map_users(cold), model.source_user_vectors(cold))
    warm = model.warm_overlap_users
    assert not torch.equal(model.target_user_embedding.weight[warm], model.source_user_embedding.weight[warm])
    # the SOURCE phase is cached pre-training, the validated TARGET phase is not
    assert [p.name.split('-')[0] for p in (tmp_path / 'cache' / 'pretrained').glob('*.pt')] == ['source']


def test_cst_regulariser_pulls_warm_users_to_their_source_factors(pipeline):
    drift = {}
    for weight in (0.0, 100.0):
        run = pipeline('CST', train_epochs=["SOURCE:1", "TARGET:3"], cst_reg_weight=weight, stopping_step=10)
        run.fit()
        warm = run.model.warm_overlap_users
        diff = run.model.target_user_embedding.weight[warm] - run.model.source_user_embedding.weight[warm]
        drift[weight] = diff.norm(dim=-1).mean().item()
    assert drift[100.0] < drift[0.0] / 2, drift


# ----- SSCDR
def test_sscdr_losses_read_no_target_interaction_of_cold_users(pipeline):
    run = pipeline('SSCDR', train_epochs=PRETRAIN + ["OVERLAP:2"])
    model, reads = run.model, {'batches': [], 'unsup': [], 'sup': []}
    bridge_loss, unsup, sup = model.bridge_loss, model.unsupervised_loss, model.supervised_loss

    def record_batch(interaction):
        reads['batches'].append(set(interaction.interaction))
        return bridge_loss(interaction)

    def record_unsup(users, pos, neg):
        reads['unsup'].append((users.clone(), pos.clone(), neg.clone()))
        return unsup(users, pos, neg)

    def record_sup(users):
        reads['sup'].append(users.clone())
        return sup(users)
    model.bridge_loss, model.unsupervised_loss, model.supervised_loss = record_batch, record_unsup, record_sup
    run.fit()

    assert reads['batches'] and all(not any(f.startswith('target') or 'warm' in f for f in fields)
                                    for fields in reads['batches'])
    source = run.train_data.source_dataset.inter_feat
    source_pairs = set(zip(source[model.SOURCE_USER_ID].tolist(), source[model.SOURCE_ITEM_ID].tolist()))
    for users, pos, neg in reads['unsup']:
        assert set(zip(users.tolist(), pos.tolist())) <= source_pairs  # observed SOURCE interactions only
        assert (pos >= model.target_num_items).all() and (neg >= model.target_num_items).all()  # source items
    cold = cold_users(run)
    supervised = torch.cat(reads['sup'])
    assert torch.isin(supervised, model.warm_overlap_users).all() and not torch.isin(supervised, cold).any()
    assert torch.isin(torch.cat([u for u, _, _ in reads['unsup']]), cold).any()  # cold users' SOURCE rows are used


def test_sscdr_one_hop_inference_is_the_mean_of_mapped_user_and_items(pipeline):
    run = pipeline('SSCDR', train_epochs=PRETRAIN + ["OVERLAP:0"])
    model = run.model
    source = run.train_data.source_dataset.inter_feat
    user = int(cold_users(run)[0])
    items = source[model.SOURCE_ITEM_ID][source[model.SOURCE_USER_ID] == user].unique()
    with torch.no_grad():
        nodes = torch.cat([model.bridge(model.source_user_vectors(torch.tensor([user]))),
                           model.bridge(model.base_model.constrain(model.source_item_embedding(items)))])
        assert torch.allclose(model.map_users(torch.tensor([user]))[0], nodes.mean(0), atol=1e-6)
        warm = model.warm_overlap_users[:4]  # the supervised loss maps the user alone, not its neighbourhood
        residual = (model.bridge(model.source_user_vectors(warm))
                    - model.base_model.constrain(model.target_user_embedding(warm)))
        assert torch.allclose(model.supervised_loss(warm), residual.pow(2).sum(-1).mean())
        model.hops = 0
        assert torch.allclose(model.map_users(torch.tensor([user]))[0], nodes[0], atol=1e-6)
        model.hops = 2
        reached = model.neighbourhood(torch.tensor([user]))
        assert set(reached['item'][1].tolist()) == set(items.tolist())
        assert user in reached['user'][1].tolist() and len(reached['user'][1]) > 1


# ----- PTUPCDR
def test_ptupcdr_bridge_depends_on_the_source_history_only(pipeline):
    run = pipeline('PTUPCDR', train_epochs=PRETRAIN + ["OVERLAP:0"], ptupcdr_max_history=6)
    model = run.model
    a, b, c = (int(u) for u in model.warm_overlap_users[:3])
    with torch.no_grad():
        model.source_history[b] = model.source_history[a]
        model.source_history_mask[b] = model.source_history_mask[a]
        assert not torch.equal(model.source_history[c], model.source_history[a])
        matrices = model.mapping_matrices(torch.tensor([a, b, c]))
        assert torch.allclose(matrices[0], matrices[1])       # identical histories -> identical W_u
        assert not torch.allclose(matrices[0], matrices[2])   # different histories -> different W_u
        # padding does not count: changing padded ids leaves W_u unchanged
        model.source_history_mask[a, -1] = False
        before = model.mapping_matrices(torch.tensor([a]))
        model.source_history[a, -1] = (model.source_history[a, -1] + 1) % model.total_num_items
        assert torch.allclose(before, model.mapping_matrices(torch.tensor([a])))
    assert model.source_history_mask.sum(1).max() <= 6


def test_ptupcdr_task_batches_hold_each_users_target_positives(pipeline):
    run = pipeline('PTUPCDR', train_epochs=PRETRAIN + ["OVERLAP:1"])
    model = run.model
    model.set_phase(Phase.OVERLAP)
    batch = next(iter(run.trainer.bridge_loader(run.train_data)))
    from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
    from recbole_tmcdr.model.ptupcdr import NEG, POS, SAMPLE_USER
    users = batch[WARM_USER_FIELD]
    target = run.train_data.target_dataset.inter_feat
    pairs = set(zip(target[model.TARGET_USER_ID].tolist(), target[model.TARGET_ITEM_ID].tolist()))
    rows = users[batch[SAMPLE_USER]]
    assert set(zip(rows.tolist(), batch[POS].tolist())) == {p for p in pairs if p[0] in set(users.tolist())}
    assert batch[NEG].shape == (len(rows), model.neg_per_pos)
    assert torch.isin(users, model.warm_overlap_users).all()
    loss = model.calculate_loss(batch)
    loss.backward()
    assert all(p.grad is not None for p in model.bridge.parameters())


def test_ptupcdr_mse_objective_trains(pipeline):
    run = pipeline('PTUPCDR', train_epochs=PRETRAIN + ["OVERLAP:2"], ptupcdr_objective='mse')
    run.fit()
    with pytest.raises(ValueError, match="'ptupcdr_objective' parameter of PTUPCDR must be one of"):
        pipeline('PTUPCDR', ptupcdr_objective='rating')


# ----- RecBole general models: a cold user gets the mean-user scores
def full_sort(model, users):
    from recbole.data.interaction import Interaction
    model.eval()
    with torch.no_grad():
        return model.full_sort_predict(Interaction({model.TARGET_USER_ID: users})).view(len(users), -1)


@pytest.mark.parametrize('name', ['BPR', 'LightGCN', 'Pop'])
def test_recbole_model_scores_a_cold_user_as_the_mean_warm_user(pipeline, name):
    run = pipeline(name, train_epochs=["TARGET:1"] if name == 'Pop' else ["TARGET:2"])
    run.fit()
    model, inner = run.model, run.model.recbole_model
    cold = cold_users(run)
    assert not model.has_target_rows[cold].any()
    warm = model.has_target_rows.nonzero().squeeze(-1)
    with torch.no_grad():
        if name == 'BPR':
            expected = inner.user_embedding.weight[warm].mean(0) @ inner.item_embedding.weight.T
        elif name == 'LightGCN':
            users_all, items_all = inner.forward()
            expected = users_all[warm].mean(0) @ items_all.T
        else:
            expected = (inner.item_cnt / inner.max_cnt).squeeze(-1).float()
    scores = full_sort(model, cold)
    assert torch.allclose(scores, expected.expand_as(scores), atol=1e-5)
    warm_scores = full_sort(model, warm[:3])  # users with target rows keep their own scores
    if name != 'Pop':
        assert not torch.allclose(warm_scores[0], warm_scores[1])


def test_recbole_model_is_built_on_the_target_training_split(pipeline):
    run = pipeline('BPR', train_epochs=["TARGET:1"])
    inner = run.model.recbole_model
    assert (inner.USER_ID, inner.ITEM_ID, inner.NEG_ITEM_ID) == ('target_user_id', 'target_item_id',
                                                                 'neg_target_item_id')
    assert inner.n_items == run.model.target_num_items
    assert inner.user_embedding.weight.shape[1] == run.config['embedding_size']  # protocol's, not RecBole's 64


def test_recbole_model_rejects_source_phases(pipeline):
    with pytest.raises(ConfigError, match="must list the phases TARGET in this order"):
        pipeline('LightGCN', train_epochs=["SOURCE:1", "TARGET:1"])


def test_lightgcn_loss_propagates_the_batch_rows_only_as_the_whole_graph(pipeline):
    """PropagatedLightGCN's loss (each layer propagated only to the rows the later layers read: the last to the
    batch's rows) equals RecBole's LightGCN loss on the same model (every layer propagated to the whole graph), and
    so do the gradients, at 0-3 layers."""
    from recbole.model.general_recommender import LightGCN
    from recbole_tmcdr.model.graph_propagation import PropagatedLightGCN
    run = pipeline('LightGCN', train_epochs=["TARGET:2"])
    model = run.model.recbole_model
    assert type(model) is PropagatedLightGCN  # else the two losses below would be the same function
    batch = run.model.recbole_batch(batch_of(run, Phase.TARGET))
    nodes = torch.cat([batch[model.USER_ID], batch[model.ITEM_ID] + model.n_users,
                       batch[model.NEG_ITEM_ID] + model.n_users])
    assert len(nodes.unique()) < len(nodes)  # repeated users and items: their gradients must add up
    for n_layers in range(4):
        model.n_layers = n_layers
        losses, grads = [], []
        for loss_of in (type(model).calculate_loss, LightGCN.calculate_loss):
            model.zero_grad()
            losses.append(loss_of(model, batch))
            losses[-1].backward()
            grads.append([parameter.grad.clone() for parameter in model.parameters()])
        assert torch.allclose(*losses, rtol=1e-6, atol=0), n_layers
        for ours, theirs in zip(*grads):
            assert torch.allclose(ours, theirs, rtol=0, atol=1e-6 * theirs.abs().max().item()), n_layers  # rounding


def test_lightgcn_block_product_and_its_transpose_are_exact():
    """BlockMatmul (a block of rows of a CSR matrix, its columns renumbered) has the gradient of the dense product
    in float64: on CPU through scipy's CSC product; the transposed CSR product it uses on other devices is checked
    on CPU against the dense transpose."""
    from recbole_tmcdr.model.graph_propagation import BlockMatmul, csr_row_block
    generator = torch.Generator().manual_seed(0)
    dense_matrix = torch.rand(9, 9, generator=generator, dtype=torch.float64)
    dense_matrix[dense_matrix < 0.6] = 0
    rows = torch.tensor([1, 4, 5, 8])
    crow, col, values = csr_row_block(dense_matrix.to_sparse_csr(), rows)
    assert torch.equal(torch.sparse_csr_tensor(crow, col, values, (4, 9)).to_dense(), dense_matrix[rows])
    block = (crow, col, values, (4, 9))
    assert torch.autograd.gradcheck(lambda dense: BlockMatmul.apply(block, dense),
                                    torch.rand(9, 3, dtype=torch.float64, requires_grad=True))
    grad = torch.rand(4, 3, generator=generator, dtype=torch.float64)
    assert torch.allclose(torch.sparse_csr_tensor(crow, col, values, (4, 9)).t() @ grad, dense_matrix[rows].T @ grad)


def test_lightgcn_propagation_trains_exactly_as_recboles(pipeline, monkeypatch):
    """PropagatedLightGCN (CSR matrix, layers summed without a stack) is RecBole's LightGCN computed
    faster: same state dict, same propagated embeddings and the same parameters after Adam steps on the same batches."""
    import recbole_tmcdr.model.graph_propagation as graph_propagation
    from recbole.model.general_recommender import LightGCN
    fast = pipeline('LightGCN', train_epochs=["TARGET:2"])
    monkeypatch.setattr(recbole_tmcdr.model.recbole_general, 'FASTER_MODELS', {})  # the table the adapter reads
    recbole_run = pipeline('LightGCN', train_epochs=["TARGET:2"])
    assert type(fast.model.recbole_model) is graph_propagation.PropagatedLightGCN
    assert type(recbole_run.model.recbole_model) is LightGCN
    assert fast.model.state_dict().keys() == recbole_run.model.state_dict().keys()
    recbole_run.model.load_state_dict(fast.model.state_dict())
    models = (fast.model, recbole_run.model)
    optimizers = [torch.optim.Adam(model.parameters(), lr=0.01) for model in models]
    batch = batch_of(fast, Phase.TARGET)
    for _ in range(3):
        for model, optimizer in zip(models, optimizers):
            model.phase = Phase.TARGET
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
    for ours, theirs in zip(*(model.parameters() for model in models)):  # equal to float32 rounding
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)
    with torch.no_grad():
        for ours, theirs in zip(fast.model.recbole_model.forward(), recbole_run.model.recbole_model.forward()):
            assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)
        copied = copy.deepcopy(fast.model)  # builds its own CSR matrix
        for ours, theirs in zip(copied.recbole_model.forward(), fast.model.recbole_model.forward()):
            assert torch.equal(ours, theirs)
        inner = fast.model.recbole_model  # a new graph tensor (not only a new device) builds its CSR form anew
        before = inner.forward()
        inner.norm_adj_matrix = (inner.norm_adj_matrix * 2).coalesce()
        for doubled, single in zip(inner.forward(), before):
            assert not torch.allclose(doubled, single)
