"""TMCDR: Transfer-Meta framework for cross-domain recommendation to cold-start users.

Reference: Yongchun Zhu, Kaikai Ge, Fuzhen Zhuang, Ruobing Xie, Dongbo Xi, Xu Zhang, Leyu Lin, Qing He.
"Transfer-Meta Framework for Cross-domain Recommendation to Cold-Start Users." SIGIR 2021.

Transfer stage: the source and target base models are pre-trained (shared with EMCDR, same cache) and
frozen. Meta stage (Algorithm 1): the meta network f_theta is trained with MAML on tasks built from warm
overlapping users: a task is a group of users split into U_a (learning phase) and U_b (cold-start phase);
the task loss is the base model's OWN training loss with f_theta(u^s) as the user embedding, on the
target positives of those users plus sampled negatives, against the frozen target item embeddings:

    theta'  = theta - lambda * d L_a(theta) / d theta          (``meta_inner_steps`` times)
    theta  <- theta - alpha * d sum_i L_b_i(theta'_i) / d theta (second order; ``meta_first_order`` drops it)

Groups are processed at once with ``torch.func.vmap``; the inner step is ``torch.func.grad`` over a
parameter dict and the adapted network is evaluated with ``functional_call``. A cold user is scored by
the target base model with f_theta(u^s). ``TMCDR_MF`` / ``_BPR`` / ``_ListRankMF`` / ``_CML`` are one
implementation; their YAML sets ``base_model``.
"""

from enum import Enum

import torch
from torch.func import functional_call, grad, vmap

from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
from recbole_tmcdr.registry import register_model


class LossReduction(str, Enum):
    SUM = 'sum'    # the paper's Eq. 1 and 3: sum over the phase's samples
    MEAN = 'mean'  # average over the phase's samples (the inner step size then means something else)


# Fields of a meta-batch (built by recbole_tmcdr.trainer.meta_trainer.MetaTaskLoader), for both phases:
# users (n, U) user ids of the phase (0 = padding); sample_user (n, S) index into the users axis;
# pos (n, S) positive target item; neg (n, S, k) sampled negatives; mask (n, S) 1 for real samples.
TASK_FIELDS = ('users', 'sample_user', 'pos', 'neg', 'mask')
SUPPORT, QUERY = 'support', 'query'


@register_model('TMCDR_MF', 'TMCDR_BPR', 'TMCDR_ListRankMF', 'TMCDR_CML')
class TMCDR(CrossDomainMappingRecommender):
    """Meta network f_theta over frozen pre-trained embeddings, trained task-oriented with MAML."""

    trainer = 'MetaTrainer'

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inner_lr = config['meta_inner_lr']
        self.inner_steps = config['meta_inner_steps']
        self.first_order = config['meta_first_order']
        self.test_adapt_steps = config['meta_test_adapt_steps']
        self.reduction = LossReduction(config['meta_loss_reduction'])  # values checked at start-up

    # ----- the task loss: the base model's own loss with f_theta(u^s) as user embedding
    def task_loss(self, params, user_vecs, sample_user, pos_vecs, neg_vecs, mask):
        """Loss of one phase of one task. ``user_vecs`` (U, d) are source embeddings u^s of the phase's
        users, ``sample_user`` (S,) says whose sample each row is, ``pos_vecs`` (S, d) / ``neg_vecs``
        (S, k, d) are frozen target item embeddings, ``mask`` (S,) marks real (non-padding) samples."""
        mapped = self.base_model.constrain(functional_call(self.bridge, params, (user_vecs,)))
        per_sample = self.base_model.loss(mapped[sample_user], pos_vecs, neg_vecs)
        total = (per_sample * mask).sum()
        if self.reduction == LossReduction.SUM:
            return total
        return total / mask.sum().clamp(min=1.0)

    def adapt(self, params, support, steps):
        """Inner loop: ``steps`` gradient steps of size lambda on the support (U_a) loss."""
        for _ in range(steps):
            grads = grad(self.task_loss)(params, *support)
            if self.first_order:
                grads = {name: g.detach() for name, g in grads.items()}
            params = {name: p - self.inner_lr * grads[name] for name, p in params.items()}
        return params

    def adapted_query_loss(self, params, support, query):
        return self.task_loss(self.adapt(params, support, self.inner_steps), *query)

    # ----- a meta-batch of tasks
    def task_tensors(self, interaction, phase):
        """Embedding lookups of one phase of a meta-batch (outside the transforms: they are constants)."""
        users, sample_user, pos, neg, mask = (interaction[f'{phase}_{field}'] for field in TASK_FIELDS)
        return (self.source_user_vectors(users), sample_user, self.target_item_vectors(pos),
                self.target_item_vectors(neg), mask)

    def meta_parameters(self):
        return dict(self.bridge.named_parameters())

    def meta_loss(self, interaction, vectorised=True):
        """sum (or mean) over the meta-batch's tasks of L_b(theta'_i)."""
        support, query = self.task_tensors(interaction, SUPPORT), self.task_tensors(interaction, QUERY)
        params = self.meta_parameters()
        if vectorised:
            per_task = vmap(self.adapted_query_loss, in_dims=(None, 0, 0))(params, support, query)
        else:  # reference path: one task at a time (tests and the vectorisation benchmark)
            per_task = torch.stack([
                self.adapted_query_loss(params, tuple(t[i] for t in support), tuple(t[i] for t in query))
                for i in range(len(support[0]))])
        return per_task.sum() if self.reduction == LossReduction.SUM else per_task.mean()

    def bridge_loss(self, interaction):
        if WARM_USER_FIELD in interaction:  # warm start of theta (meta_warm_start_epochs): EMCDR's objective
            return self.mapping_mse_loss(interaction[WARM_USER_FIELD])
        return self.meta_loss(interaction)

    # ----- test-time adaptation (beyond the paper): adapt theta on a cold user's K revealed items
    def kshot_user_representation(self, users, support_items):
        n_shots = len(support_items[0]) if len(support_items) else 0
        if self.test_adapt_steps == 0 or n_shots == 0:
            return self.map_users(users)  # the paper's f_theta(u^s)
        device = users.device
        pos = torch.stack(list(support_items)).to(device)                                   # (B, K)
        neg = torch.randint(1, self.target_num_items, (*pos.shape, self.neg_per_pos), device=device)
        # one task per user: U = {the user}, its K support positives with sampled negatives
        support = (self.source_user_vectors(users).unsqueeze(1), torch.zeros_like(pos),
                   self.target_item_vectors(pos), self.target_item_vectors(neg), torch.ones(pos.shape, device=device))
        params = {name: p.detach() for name, p in self.meta_parameters().items()}

        def adapted_representation(params, task):
            adapted = self.adapt(params, task, self.test_adapt_steps)
            return self.base_model.constrain(functional_call(self.bridge, adapted, (task[0],)))[0]

        return vmap(adapted_representation, in_dims=(None, 0))(params, support)
