"""The plugin's training batches (TripletLoader) against RecBole-CDR's loader, and the per-domain tables."""

import pytest
import torch
from recbole_cdr.utils import train_mode2state

from recbole_tmcdr.data.triplets import DomainTriplets, TripletLoader
from recbole_tmcdr.model.base_models import BASE_MODELS
from recbole_tmcdr.phases import Phase

MODES = (Phase.SOURCE, Phase.TARGET)


def recbole_loader(run, mode):
    run.train_data.set_mode(train_mode2state[mode.value])
    return run.train_data


def fields(model, domain):
    return tuple(getattr(model, f'{domain.value}_{name}') for name in ('USER_ID', 'ITEM_ID', 'NEG_ITEM_ID'))


def sampler_of(run, domain):
    loader = run.train_data.source_dataloader if domain == Phase.SOURCE else run.train_data.target_dataloader
    return loader.sampler


def sampler_candidates(run, domain):
    sampler = sampler_of(run, domain)
    if domain == Phase.SOURCE:
        return set(sampler.item_id_list.tolist())
    return set(range(1, sampler.item_num))


@pytest.mark.parametrize('mode', MODES)
def test_same_batches_as_recbole_cdr_loader(pipeline, mode):
    run = pipeline('EMCDR_MF')
    ours = TripletLoader.from_train_data(run.train_data, run.model, run.config, mode)
    theirs = recbole_loader(run, mode)
    k = run.model.neg_per_pos
    user_field, item_field, neg_field = fields(run.model, mode)
    their_batches = [(len(b), b[user_field]) for b in theirs]
    our_batches = list(ours)
    assert len(ours) == len(theirs) == len(our_batches) == len(their_batches)
    for batch, (their_rows, _) in zip(our_batches, their_batches):
        assert batch[neg_field].shape == (len(batch[user_field]), k)
        assert len(batch[user_field]) * k == their_rows  # RecBole repeats the batch k times, one negative each
    # one epoch holds every training row once
    dataset = run.train_data.source_dataset if mode == Phase.SOURCE else run.train_data.target_dataset
    rows = sorted(zip(dataset.inter_feat[user_field].tolist(), dataset.inter_feat[item_field].tolist()))
    seen = sorted((u, i) for b in our_batches for u, i in zip(b[user_field].tolist(), b[item_field].tolist()))
    assert seen == rows


@pytest.mark.parametrize('mode', MODES)
def test_negatives_are_recboles_candidates_minus_the_users_items(pipeline, mode):
    run = pipeline('EMCDR_MF')
    loader = TripletLoader.from_train_data(run.train_data, run.model, run.config, mode)
    user_field, _, neg_field = fields(run.model, mode)
    candidates, used = sampler_candidates(run, mode), sampler_of(run, mode).used_ids
    assert set(loader.domains[mode].candidates.tolist()) == candidates
    drawn = set()
    for batch in loader:
        for user, negatives in zip(batch[user_field].tolist(), batch[neg_field].tolist()):
            assert not set(negatives) & used[user]
            drawn.update(negatives)
    assert drawn <= candidates and len(drawn) > 0.9 * len(candidates)  # uniform over the candidates


def test_both_mode_pairs_each_target_batch_with_source_rows(pipeline):
    run = pipeline('CMF', train_epochs=["BOTH:1"])
    loader = TripletLoader.from_train_data(run.train_data, run.model, run.config, Phase.BOTH)
    assert len(loader) == len(recbole_loader(run, Phase.BOTH))
    batches = list(loader)
    source_user, target_user = fields(run.model, Phase.SOURCE)[0], fields(run.model, Phase.TARGET)[0]
    assert all(len(b[source_user]) > 0 and len(b[target_user]) > 0 for b in batches)
    assert sum(len(b[target_user]) for b in batches) == len(run.train_data.target_dataset.inter_feat)


def test_a_seed_gives_the_same_batches(pipeline):
    run = pipeline('EMCDR_MF')
    loader = TripletLoader.from_train_data(run.train_data, run.model, run.config, Phase.TARGET)
    epochs = []
    for _ in range(2):
        torch.manual_seed(3)
        epochs.append([dict(batch.interaction) for batch in loader])
    for a, b in zip(*epochs):
        assert all(torch.equal(a[name], b[name]) for name in a)


def test_rejection_leaves_only_the_one_item_a_user_has_not_seen():
    # user 1 has every candidate but item 3: all of its negatives must be item 3
    triplets = DomainTriplets(users=[1, 1, 1, 2], items=[1, 2, 4, 1], candidates=[1, 2, 3, 4], neg_per_pos=5,
                              batch_positives=2, fields=('u', 'i', 'n'))
    torch.manual_seed(0)
    negatives = triplets.negatives(torch.tensor([1, 1, 2]))
    assert negatives[:2].eq(3).all() and not negatives[2].eq(1).any()


def test_a_user_with_every_item_has_no_negative():
    with pytest.raises(ValueError, match='every item'):
        DomainTriplets(users=[1, 1], items=[1, 2], candidates=[1, 2], neg_per_pos=1, batch_positives=1,
                       fields=('u', 'i', 'n'))


@pytest.mark.parametrize('name', ['MF', 'BPR', 'ListRankMF', 'CML'])
def test_sample_loss_is_the_loss_of_the_positive_and_negatives(name):
    model = BASE_MODELS.get(name)({'cml_margin': 0.5})
    users, items = torch.randn(6, 4), torch.randn(6, 3, 4)
    assert torch.allclose(model.sample_loss(users, items), model.loss(users, items[:, 0], items[:, 1:]), atol=1e-6)


def test_tables_hold_their_domains_ids_only(pipeline):
    model = pipeline('EMCDR_MF').model
    for domain in (Phase.SOURCE, Phase.TARGET):
        prefix = domain.value.lower()
        for kind in ('user', 'item'):
            table = getattr(model, f'{prefix}_{kind}_embedding')
            overlapped, target, total = (getattr(model, f'{which}_num_{kind}s')
                                         for which in ('overlapped', 'target', 'total'))
            ids = (torch.arange(target) if domain == Phase.TARGET else
                   torch.cat([torch.arange(overlapped), torch.arange(target, total)]))
            assert table.num_embeddings == len(ids) == getattr(model, f'{prefix}_num_{kind}s')
            assert torch.equal(table.rows(ids), torch.arange(len(ids)))  # each id of the domain has its own row
            assert torch.equal(table(ids), table.weight)
