"""The trainer of PTUPCDR: a :class:`ColdStartTrainer` whose bridge phase (task objective) iterates warm users
together with their target training positives and sampled negatives.

Everything else (cached pre-training, per-phase optimizer, early stopping and best state on the cold
VALIDATION users) is inherited; PTUPCDR's phase differs in exactly one method, :meth:`bridge_loader`.
"""

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
from recbole_tmcdr.model.ptupcdr import NEG, POS, SAMPLE_USER, Objective
from recbole_tmcdr.registry import register_trainer
from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer, WarmUserLoader
from recbole_tmcdr.trainer.meta_trainer import UserPositives, sample_negatives


class WarmUserSampleLoader(WarmUserLoader):
    """:class:`WarmUserLoader` batches that also carry every training target positive of their users, each
    with ``neg_per_pos`` negatives from RecBole's training sampler (flattened: one row per positive)."""

    def __init__(self, users, batch_size, positives, sampler, neg_per_pos):
        super().__init__(users, batch_size)
        self.positives = positives
        self.sampler = sampler
        self.neg_per_pos = neg_per_pos

    def __iter__(self):
        for batch in super().__iter__():
            users = batch[WARM_USER_FIELD].numpy()
            items = [self.positives.of(user) for user in users]
            sample_user = np.repeat(np.arange(len(users)), [len(i) for i in items])
            pos = np.concatenate(items)
            neg = sample_negatives(self.sampler, users[sample_user], pos, self.neg_per_pos)
            batch.update(Interaction({SAMPLE_USER: torch.from_numpy(sample_user), POS: torch.from_numpy(pos),
                                      NEG: neg.contiguous()}))
            yield batch


@register_trainer
class PTUPCDRTrainer(ColdStartTrainer):
    """ColdStartTrainer whose bridge phase feeds PTUPCDR's task-oriented loss."""

    def bridge_loader(self, train_data):
        if self.model.objective == Objective.MSE:
            return super().bridge_loader(train_data)
        positives = UserPositives.of_target_training(train_data, self.model)
        return WarmUserSampleLoader(self.model.warm_overlap_users, self.config['mapping_batch_size'], positives,
                                    train_data.target_dataloader.sampler, self.model.neg_per_pos)
