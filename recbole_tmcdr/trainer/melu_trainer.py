"""The trainer of MeLU: a :class:`ColdStartTrainer` whose one phase (TARGET) meta-trains on tasks of warm target users.

Everything else (per-phase optimizer at ``learning_rate``, early stopping and best state on the cold VALIDATION users)
is inherited; MeLU's phase differs in :meth:`is_pretraining` (it is validated, not cached) and in
:meth:`bridge_loader` (its meta-batches: one user per task).
"""

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_tmcdr.model.melu import TASK_USER
from recbole_tmcdr.model.tmcdr import QUERY, SUPPORT
from recbole_tmcdr.registry import register_trainer
from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer
from recbole_tmcdr.trainer.meta_trainer import padded_tasks, sample_negatives


class UserTaskLoader:
    """Meta-batches of MeLU, ``tasks_per_batch`` users each: a user's support is the first min(``support_size``,
    n - 1) of their ``rows`` (the protocol's order), the query the rest (a random subset of at most ``max_query``,
    drawn anew each epoch); every positive has ``neg_per_pos`` negatives from RecBole's training sampler, and the
    tasks are padded to a common size (``*_mask`` marks real samples)."""

    def __init__(self, rows, sampler, neg_per_pos, support_size, max_query, tasks_per_batch):
        self.rows, self.sampler, self.neg_per_pos = rows, sampler, neg_per_pos
        self.users = torch.as_tensor(sorted(rows), dtype=torch.long)
        self.support_size, self.max_query, self.tasks_per_batch = support_size, max_query, tasks_per_batch

    def __len__(self):
        return (len(self.users) + self.tasks_per_batch - 1) // self.tasks_per_batch

    def __iter__(self):
        order = self.users[torch.randperm(len(self.users))].numpy()
        for start in range(0, len(order), self.tasks_per_batch):
            yield self.meta_batch(order[start:start + self.tasks_per_batch])

    def split(self, user):
        items = self.rows[user]
        shots = min(self.support_size, len(items) - 1)
        query = items[shots:]
        if len(query) > self.max_query:
            query = query[np.sort(torch.randperm(len(query))[:self.max_query].numpy())]
        return items[:shots], query

    def meta_batch(self, users):
        fields = {TASK_USER: torch.from_numpy(users)}
        for phase, picks in zip((SUPPORT, QUERY), zip(*(self.split(user) for user in users))):
            all_pos = np.concatenate(picks)
            all_users = np.repeat(users, [len(p) for p in picks])
            neg = (sample_negatives(self.sampler, all_users, all_pos, self.neg_per_pos) if len(all_pos)
                   else torch.zeros(0, self.neg_per_pos, dtype=torch.long))
            _, pos, negs, mask = padded_tasks([(np.zeros(len(p), dtype=np.int64), p) for p in picks], neg,
                                              self.neg_per_pos)
            fields.update({f'{phase}_pos': pos, f'{phase}_neg': negs, f'{phase}_mask': mask})
        return Interaction(fields)


@register_trainer
class MeLUTrainer(ColdStartTrainer):
    """ColdStartTrainer whose TARGET phase is MeLU's meta-training, validated on the cold users."""

    def is_pretraining(self, phase):
        return False

    def bridge_loader(self, train_data):
        config = self.config
        return UserTaskLoader(self.model.task_rows, train_data.target_dataloader.sampler, self.model.neg_per_pos,
                              config['melu_support_size'], config['melu_max_query'], config['melu_tasks_per_batch'])
