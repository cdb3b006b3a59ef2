"""End to end: no cold user's target interaction reaches any training input of a run."""

import torch
from recbole.data.interaction import Interaction

from recbole_tmcdr.trainer.meta_trainer import MetaTrainer

PHASES = ["SOURCE:1", "TARGET:1", "OVERLAP:1"]


def test_cold_users_target_rows_reach_no_training_input(pipeline):
    run = pipeline('TMCDR_MF', train_epochs=PHASES, meta_group_size=8)
    model, train_data = run.model, run.train_data
    uid = model.TARGET_USER_ID
    cold_valid = set(run.valid_data.dataset.inter_feat[uid].tolist())
    cold_test = set(run.test_data.dataset.inter_feat[uid].tolist())
    cold = cold_valid | cold_test
    assert cold_valid and cold_test and cold_valid.isdisjoint(cold_test)
    # target pre-training rows, and what the training sampler knows (negative sampling statistics)
    assert cold.isdisjoint(train_data.target_dataset.inter_feat[uid].tolist())
    used = train_data.target_dataloader.sampler.used_ids
    assert all(len(used[u]) == 0 for u in cold)
    # the bridge / meta stage: warm users only
    assert cold.isdisjoint(model.warm_overlap_users.tolist())
    assert isinstance(run.trainer, MetaTrainer)
    for batch in run.trainer.bridge_loader(train_data):
        for phase in ('support', 'query'):
            users = batch[f'{phase}_users'][batch[f'{phase}_users'] > 0]
            assert cold.isdisjoint(users.tolist())
    # the cold users still have their SOURCE rows (the profile they bring)
    source_users = set(train_data.source_dataset.inter_feat[model.SOURCE_USER_ID].tolist())
    assert cold <= source_users
    # and they are scored from those: every cold user gets finite scores
    scores = model.full_sort_predict(Interaction({uid: torch.tensor(sorted(cold))}))
    assert torch.isfinite(scores).all()
