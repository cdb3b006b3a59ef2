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

Groups are processed at once with ``torch.func.vmap`` (in chunks of ``meta_vmap_chunk_size``); the inner
step is ``torch.func.grad`` over a parameter dict, the adapted network is evaluated with
``functional_call``, and each task's meta-gradient is ``grad_and_value`` of its query loss. A cold user is scored by
the target base model with f_theta(u^s). ``TMCDR_MF`` / ``_BPR`` / ``_ListRankMF`` / ``_CML`` are one
implementation; their YAML sets ``base_model``.
"""

import copy
from enum import Enum

import torch
from torch.func import functional_call, grad, grad_and_value, vmap

from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
from recbole_tmcdr.registry import register_model
from recbole_tmcdr.validation import Rule, non_negative, open_unit, positive


class LossReduction(str, Enum):
    SUM = 'sum'    # the paper's Eq. 1 and 3: sum over the phase's samples
    MEAN = 'mean'  # average over the phase's samples (the inner step size then means something else)


class ScoringParameters(str, Enum):
    THETA = 'theta'      # the paper: cold users are scored with f_theta
    ADAPTED = 'adapted'  # beyond the paper: with theta' = theta after the inner step on warm groups (averaged)


# Fields of a meta-batch (built by recbole_tmcdr.trainer.meta_trainer.MetaTaskLoader), for both phases:
# users (n, U) user ids of the phase (0 = padding); sample_user (n, S) index into the users axis;
# pos (n, S) positive target item; neg (n, S, k) sampled negatives; mask (n, S) 1 for real samples.
TASK_FIELDS = ('users', 'sample_user', 'pos', 'neg', 'mask')
SUPPORT, QUERY = 'support', 'query'


def with_gradient(value, params, grads):
    """``value`` as a scalar whose gradient w.r.t. each of ``params`` is ``grads[name]``. The meta-gradient
    is computed task by task inside the vmap (so that a chunk of tasks stays in cache through its forward
    and backward); the trainer's ``loss.backward()`` then only deposits it."""
    linear = sum((p * grads[name]).sum() for name, p in params.items())
    return value.detach() + (linear - linear.detach())


def inner_loop(loss, params, support, steps, lr, first_order=False):
    """MAML's inner loop: ``steps`` gradient steps of size ``lr`` on ``loss(params, *support)``, starting from the
    parameter dict ``params``; differentiable through the steps (second order) unless ``first_order`` (the steps'
    gradients are then constants). Shared by TMCDR (theta on U_a) and MeLU (the decision layers on a user's support)."""
    for _ in range(steps):
        grads = grad(loss)(params, *support)
        if first_order:
            grads = {name: g.detach() for name, g in grads.items()}
        params = {name: p - lr * grads[name] for name, p in params.items()}
    return params


# TMCDRPaperStep_X: the paper's literal inner step (summed loss, lambda 0.005), an ablation row next to TMCDR_X
@register_model('TMCDR_MF', 'TMCDR_BPR', 'TMCDR_ListRankMF', 'TMCDR_CML',
                'TMCDRPaperStep_MF', 'TMCDRPaperStep_BPR', 'TMCDRPaperStep_ListRankMF', 'TMCDRPaperStep_CML')
class TMCDR(CrossDomainMappingRecommender):
    """Meta network f_theta over frozen pre-trained embeddings, trained task-oriented with MAML."""

    trainer = 'MetaTrainer'
    # the scoring changes what is validated, not what is trained: theta' is refreshed before a validation from a
    # saved random state (MetaTrainer._valid_epoch), so inference_grid can validate both within one training
    inference_keys = {'meta_scoring': 'scoring'}
    config_rules = {
        'meta_inner_lr': Rule('float', non_negative, '>= 0'),
        'meta_inner_steps': Rule('int', non_negative, '>= 0'),
        'meta_first_order': Rule('bool'),
        'meta_loss_reduction': Rule('str', choices=tuple(r.value for r in LossReduction)),
        'meta_group_size': Rule('int', lambda v: v >= 2, '>= 2'),
        'meta_support_fraction': Rule('float', open_unit, 'in (0, 1)'),
        'meta_groups_per_batch': Rule('int', positive, '> 0'),
        'meta_max_positives_per_user': Rule('int', positive, '> 0', nullable=True),
        'meta_vmap_chunk_size': Rule('int', positive, '> 0', nullable=True),
        'meta_test_adapt_steps': Rule('int', non_negative, '>= 0'),
        'meta_test_adapt_lr': Rule('float', positive, '> 0'),
        'meta_warm_start_epochs': Rule('int', non_negative, '>= 0'),
        'meta_scoring': Rule('str', choices=tuple(s.value for s in ScoringParameters)),
        'meta_diagnostics': Rule('bool'),
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inner_lr = config['meta_inner_lr']
        self.inner_steps = config['meta_inner_steps']
        self.first_order = config['meta_first_order']
        self.test_adapt_steps = config['meta_test_adapt_steps']
        self.test_adapt_lr = config['meta_test_adapt_lr']
        self.vmap_chunk_size = config['meta_vmap_chunk_size']
        self.reduction = LossReduction(config['meta_loss_reduction'])  # values checked at start-up
        self.scoring = ScoringParameters(config['meta_scoring'] or ScoringParameters.THETA.value)
        # theta' averaged over the warm groups of a meta-batch, refreshed before each validation by the trainer;
        # not trained (not in phase_parameters) but saved with the model, so a checkpoint scores as validated
        self.adapted_bridge = copy.deepcopy(self.bridge).requires_grad_(False)

    def apply_inference(self, settings):
        super().apply_inference(settings)
        self.scoring = ScoringParameters(self.scoring)

    # ----- the task loss: the base model's own loss with f_theta(u^s) as user embedding
    def task_loss(self, params, user_vecs, sample_user, items, mask):
        """Loss of one phase of one task. ``user_vecs`` (U, d) are source embeddings u^s of the phase's
        users, ``sample_user`` (S,) says whose sample each row is, ``items`` (S, 1 + k) holds each sample's
        positive then its negatives (ids of the frozen target items), ``mask`` (S,) marks real samples."""
        mapped = self.base_model.constrain(functional_call(self.bridge, params, (user_vecs,)))  # (U, d)
        item_vecs = self.target_item_vectors(items)                                              # (S, 1+k, d)
        # All of the phase's items against its U users as one matrix product, then each sample keeps its
        # own user's row: U x more arithmetic than S mat-vecs of (1+k) x d, but at matrix-product speed.
        scores = self.base_model.full_scores(mapped, item_vecs.flatten(0, 1)).view(-1, *items.shape)
        scores = scores.gather(0, sample_user.view(1, -1, 1).expand(1, *items.shape)).squeeze(0)  # (S, 1+k)
        total = (self.base_model.loss_from_scores(scores[:, 0], scores[:, 1:]) * mask).sum()
        if self.reduction == LossReduction.SUM:
            return total
        return total / mask.sum().clamp(min=1.0)

    def adapt(self, params, support, steps, lr=None):
        """Inner loop: ``steps`` gradient steps of size ``lr`` (default lambda) on the support (U_a) loss."""
        return inner_loop(self.task_loss, params, support, steps, self.inner_lr if lr is None else lr, self.first_order)

    def adapted_query_loss(self, params, support, query):
        return self.task_loss(self.adapt(params, support, self.inner_steps), *query)

    # ----- a meta-batch of tasks
    def task_inputs(self, interaction, phase):
        """One phase of a meta-batch as ``task_loss`` arguments (with a leading task axis): the source
        embeddings of its users (constants) and the ids of its samples' items."""
        users, sample_user, pos, neg, mask = (interaction[f'{phase}_{field}'] for field in TASK_FIELDS)
        return (self.source_user_vectors(users).detach(), sample_user, torch.cat([pos.unsqueeze(-1), neg], -1),
                mask)

    def meta_parameters(self):
        return dict(self.bridge.named_parameters())

    def meta_loss(self, interaction, vectorised=True):
        """sum (or mean) over the meta-batch's tasks of L_b(theta'_i), carrying its meta-gradient."""
        support, query = self.task_inputs(interaction, SUPPORT), self.task_inputs(interaction, QUERY)
        params = {name: p.detach() for name, p in self.meta_parameters().items()}
        task_gradient = grad_and_value(self.adapted_query_loss)
        if vectorised:
            grads, losses = vmap(task_gradient, in_dims=(None, 0, 0), chunk_size=self.vmap_chunk_size)(
                params, support, query)
        else:  # reference path: one task at a time (tests and the vectorisation benchmark)
            per_task = [task_gradient(params, tuple(t[i] for t in support), tuple(t[i] for t in query))
                        for i in range(len(support[0]))]
            grads = {name: torch.stack([g[name] for g, _ in per_task]) for name in params}
            losses = torch.stack([loss for _, loss in per_task])
        reduce = (lambda t: t.sum(0)) if self.reduction == LossReduction.SUM else (lambda t: t.mean(0))
        return with_gradient(reduce(losses), self.meta_parameters(), {name: reduce(g) for name, g in grads.items()})

    # ----- theta' on warm groups: the diagnostic of the inner step and the ADAPTED scoring
    def map_users(self, user_ids, scoring=None):
        bridge = self.adapted_bridge if (scoring or self.scoring) == ScoringParameters.ADAPTED else self.bridge
        return self.base_model.constrain(bridge(self.source_user_vectors(user_ids)))

    @torch.no_grad()
    def inner_step_ratio(self, interaction):
        """||lambda * grad L_a(theta)|| / ||theta|| averaged over the meta-batch's tasks: how far one inner step
        moves theta. Large values mean theta is trained to be good only after a step, while the paper tests at
        theta."""
        support = self.task_inputs(interaction, SUPPORT)
        params = {name: p.detach() for name, p in self.meta_parameters().items()}
        grads = vmap(lambda task: grad(self.task_loss)(params, *task), chunk_size=self.vmap_chunk_size)(support)
        step = torch.sqrt(sum((g ** 2).flatten(1).sum(1) for g in grads.values()))  # (tasks,)
        norm = torch.sqrt(sum((p ** 2).sum() for p in params.values()))
        return float((self.inner_lr * step / norm).mean())

    @torch.no_grad()
    def refresh_adapted_bridge(self, interaction):
        """theta' of every task of the meta-batch (``meta_inner_steps`` steps on its U_a), averaged over tasks,
        into ``adapted_bridge``."""
        support = self.task_inputs(interaction, SUPPORT)
        params = {name: p.detach() for name, p in self.meta_parameters().items()}
        adapted = vmap(lambda task: self.adapt(params, task, self.inner_steps), chunk_size=self.vmap_chunk_size)(support)
        self.adapted_bridge.load_state_dict({name: value.mean(0) for name, value in adapted.items()})

    def bridge_loss(self, interaction):
        if WARM_USER_FIELD in interaction:  # warm start of theta (meta_warm_start_epochs): EMCDR's objective
            users = interaction[WARM_USER_FIELD]
            return self.mapping_mse_loss(users, self.map_users(users, ScoringParameters.THETA))
        return self.meta_loss(interaction)

    # ----- test-time adaptation (beyond the paper): adapt theta on a cold user's K revealed items (step size
    # meta_test_adapt_lr: a step sized for K samples, not for a group's hundreds), then fold-in from there
    def kshot_prior(self, users, support_items):
        n_shots = len(support_items[0]) if len(support_items) else 0
        if self.test_adapt_steps == 0 or n_shots == 0:
            return self.map_users(users)  # the paper's f_theta(u^s) (or f_theta' with meta_scoring: adapted)
        device = users.device
        pos = torch.stack(list(support_items)).to(device)                                   # (B, K)
        neg = torch.randint(1, self.target_num_items, (*pos.shape, self.neg_per_pos), device=device)
        # one task per user: U = {the user}, its K support positives with sampled negatives
        support = (self.source_user_vectors(users).detach().unsqueeze(1), torch.zeros_like(pos),
                   torch.cat([pos.unsqueeze(-1), neg], -1), torch.ones(pos.shape, device=device))
        params = {name: p.detach() for name, p in self.meta_parameters().items()}

        def adapted_representation(params, task):
            adapted = self.adapt(params, task, self.test_adapt_steps, self.test_adapt_lr)
            return self.base_model.constrain(functional_call(self.bridge, adapted, (task[0],)))[0]

        return vmap(adapted_representation, in_dims=(None, 0))(params, support)
