"""The meta-trainer of TMCDR: a :class:`ColdStartTrainer` whose bridge phase iterates meta-batches.

Everything else (pre-training and its cache, per-phase optimizer, early stopping and best checkpoint on
the cold VALIDATION users) is inherited; the meta phase differs in :meth:`bridge_loader` (its meta-batches)
and in :meth:`_valid_epoch`, which also measures the inner step and the score at theta' (``meta_diagnostics``).
"""

import contextlib
import copy

import numpy as np
import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.data.interaction import Interaction

from recbole_tmcdr.model.tmcdr import QUERY, SUPPORT, ScoringParameters
from recbole_tmcdr.registry import register_trainer
from recbole_tmcdr.validation import ConfigError
from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer, WarmUserLoader
from recbole_tmcdr.trainer.inference_grid import random_state, set_random_state


class UserPositives:
    """Training target positives of each user (CSR layout)."""

    def __init__(self, users, items, num_users):
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        order = np.argsort(users, kind='stable')
        self.items = items[order]
        self.indptr = np.zeros(num_users + 1, dtype=np.int64)
        np.add.at(self.indptr, users + 1, 1)
        np.cumsum(self.indptr, out=self.indptr)

    def of(self, user):
        return self.items[self.indptr[user]:self.indptr[user + 1]]

    @classmethod
    def of_target_training(cls, train_data, model):
        """Positives of the TARGET training split (cold users have none)."""
        target_train = train_data.target_dataset.inter_feat
        return cls(target_train[model.TARGET_USER_ID].numpy(), target_train[model.TARGET_ITEM_ID].numpy(),
                   model.total_num_users)


def sample_negatives(sampler, users, positives, neg_per_pos):
    """``neg_per_pos`` negatives per (user, positive) from RecBole's sampler, as an (N, k) tensor."""
    negatives = sampler.sample_by_user_ids(users, positives, neg_per_pos)
    return torch.as_tensor(negatives).view(neg_per_pos, -1).T  # RecBole lays them out as [k, N]


def padded_tasks(samples, neg, neg_per_pos):
    """Samples of tasks padded to one width (so that a model can ``vmap`` over the tasks): ``samples`` holds per task
    (sample_user (S_i,), positives (S_i,)) and ``neg`` (sum of S_i, k) their negatives in that order -> sample_user,
    pos (n, S), neg (n, S, k) and mask (n, S), 1 for real samples."""
    lengths = [len(pos) for _, pos in samples]
    n, width = len(samples), max(lengths)
    sample_user = torch.zeros(n, width, dtype=torch.long)
    pos = torch.zeros(n, width, dtype=torch.long)
    negs = torch.zeros(n, width, neg_per_pos, dtype=torch.long)
    mask = torch.zeros(n, width)
    offset = 0
    for g, ((idx, items), length) in enumerate(zip(samples, lengths)):
        sample_user[g, :length] = torch.from_numpy(idx)
        pos[g, :length] = torch.from_numpy(items)
        negs[g, :length] = neg[offset:offset + length]
        mask[g, :length] = 1.0
        offset += length
    return sample_user, pos, negs, mask


class MetaTaskLoader:
    """Meta-batches of Algorithm 1: groups of warm overlapping users, each split into U_a / U_b, with all
    their training target positives (optionally capped per user) and ``neg_per_pos`` negatives each from
    RecBole's training sampler. Tasks of a meta-batch are padded to a common size (``*_mask`` marks real
    samples) so that the model can ``vmap`` over them."""

    def __init__(self, warm_users, positives, sampler, neg_per_pos, group_size, support_fraction,
                 groups_per_batch, max_positives_per_user=None):
        self.warm_users = warm_users.cpu()
        self.positives = positives
        self.sampler = sampler
        self.neg_per_pos = neg_per_pos
        self.group_size = group_size
        self.support_size = int(round(group_size * support_fraction))
        if not 1 <= self.support_size < group_size:
            raise ConfigError(
                f"'meta_support_fraction' x 'meta_group_size' must leave at least one user in each of U_a and "
                f'U_b; got {support_fraction} x {group_size} -> {self.support_size} support users.')
        if len(self.warm_users) < group_size:
            raise ConfigError(f"'meta_group_size' ({group_size}) is larger than the number of warm overlapping "
                             f'users ({len(self.warm_users)}): lower it.')
        self.groups_per_batch = groups_per_batch
        self.max_positives = max_positives_per_user

    def __len__(self):
        n_groups = len(self.warm_users) // self.group_size
        return (n_groups + self.groups_per_batch - 1) // self.groups_per_batch

    def __iter__(self):
        order = self.warm_users[torch.randperm(len(self.warm_users))].numpy()
        n_groups = len(order) // self.group_size  # the last incomplete group waits for the next epoch
        groups = order[:n_groups * self.group_size].reshape(n_groups, self.group_size)
        for start in range(0, n_groups, self.groups_per_batch):
            yield self.meta_batch(groups[start:start + self.groups_per_batch])

    def _phase_samples(self, users):
        sample_user, pos = [], []
        for idx, user in enumerate(users):
            items = self.positives.of(user)
            if self.max_positives and len(items) > self.max_positives:
                items = items[torch.randperm(len(items))[:self.max_positives].numpy()]
            sample_user.append(np.full(len(items), idx, dtype=np.int64))
            pos.append(items)
        return np.concatenate(sample_user), np.concatenate(pos)

    def meta_batch(self, groups):
        fields = {}
        for phase, phase_users in ((SUPPORT, groups[:, :self.support_size]), (QUERY, groups[:, self.support_size:])):
            samples = [self._phase_samples(users) for users in phase_users]
            all_users = np.concatenate([users[idx] for users, (idx, _) in zip(phase_users, samples)])
            all_pos = np.concatenate([pos for _, pos in samples])
            neg = sample_negatives(self.sampler, all_users, all_pos, self.neg_per_pos)
            sample_user, pos, negs, mask = padded_tasks(samples, neg, self.neg_per_pos)
            fields.update({f'{phase}_users': torch.as_tensor(phase_users, dtype=torch.long),
                           f'{phase}_sample_user': sample_user, f'{phase}_pos': pos,
                           f'{phase}_neg': negs, f'{phase}_mask': mask})
        return Interaction(fields)


@contextlib.contextmanager
def preserved_random_state():
    """Run a block without consuming the random streams of training (torch, numpy for RecBole's sampler, random)."""
    state = random_state()
    try:
        yield
    finally:
        set_random_state(state)


# The warning of a too large inner step (docs/tmcdr_defaults/, cold validation users): TMCDR_BPR on ml_genre at
# lambda 0.1 moves theta by ~15% per inner step and scores NDCG@10 .15 at theta but .40 at theta'. The ratio
# alone is no signal: TMCDR_MF on Douban at lambda 0.1 moves it by ~12% and is then at its best, with theta
# BETTER than theta' (.13 vs .09). So the warning needs both a large step and theta' clearly ahead of theta.
INNER_STEP_WARNING = 0.05
ADAPTED_AHEAD = 1.10


def inner_step_warning(ratio, at_theta, at_adapted, inner_lr, reduction):
    """The one-line warning when theta is trained to be good only after an inner step, else None."""
    if ratio <= INNER_STEP_WARNING or at_adapted <= ADAPTED_AHEAD * at_theta:
        return None
    return (f'TMCDR inner step moves theta by {ratio:.0%} of its norm and cold users score better after it '
            f"(validation {at_adapted:.4f} at theta' vs {at_theta:.4f} at theta, where the paper scores): lower "
            f"'meta_inner_lr' (now {inner_lr}, meta_loss_reduction: {reduction}), or score with theta' "
            "(TMCDRAdapted_X).")


@register_trainer
class MetaTrainer(ColdStartTrainer):
    """ColdStartTrainer whose bridge phase is TMCDR's meta stage (Algorithm 1), optionally preceded by an
    EMCDR-style warm start of theta (``meta_warm_start_epochs``; beyond the paper, which starts theta at
    random). Model selection runs across both on the cold validation users, so the meta stage keeps the
    warm-start theta unless it improves on it."""

    warned_inner_step = False

    def _fit_bridge(self, train_data, valid_data, verbose, saved, show_progress, callback_fn):
        warm_start_epochs = self.config['meta_warm_start_epochs'] or 0
        if warm_start_epochs > 0:
            self.bridge_stage = 'warm_start'
            self.model.freeze_pretrained()
            meta_epochs, self.epochs = self.epochs, warm_start_epochs
            self.logger.info(f'Warm start of theta with the EMCDR objective: {warm_start_epochs} epochs at most')
            self._fit_on_cold_validation(WarmUserLoader(self.model.warm_overlap_users, self.config['mapping_batch_size']),
                                         valid_data, verbose, saved, show_progress, callback_fn)
            if self.best_state is not None:
                self.model.load_state_dict(self.best_state)
            # the meta stage: a fresh optimizer and patience, the best score so far is kept
            self.epochs, self.start_epoch, self.cur_step = meta_epochs, 0, 0
            self.optimizer = self._build_optimizer(params=self.model.phase_parameters(self.model.phase))
        self.bridge_stage = 'meta'
        super()._fit_bridge(train_data, valid_data, verbose, saved, show_progress, callback_fn)

    # ----- per meta epoch: how far the inner step moves theta, and the validation score at theta and at theta'
    def _valid_epoch(self, valid_data, show_progress=False):
        loader = getattr(self, 'meta_loader', None)
        if loader is None:  # the warm start (EMCDR's objective) has no inner step: theta' = theta
            self.model.adapted_bridge.load_state_dict(self.model.bridge.state_dict())
        if loader is None or not self.config['meta_diagnostics'] and self.model.scoring == ScoringParameters.THETA:
            self.epoch_diagnostics = {}
            return super()._valid_epoch(valid_data, show_progress=show_progress)
        # inference_grid validates its settings (the scorings) of one state in a round; full ranking draws no random
        # numbers, so what one setting validated at a scoring, the next reuses
        shared = self.validation_round is not None and isinstance(valid_data, FullSortEvalDataLoader)
        memo = self.validation_round if shared else {}
        if 'batch' not in memo:
            with preserved_random_state():  # drawing warm groups here must not change what is trained next
                batch = next(iter(loader)).to(self.device)
                self.model.refresh_adapted_bridge(batch)
            memo['batch'] = batch  # only once theta' is refreshed: a failed refresh leaves the next setting to redo it
        own = self.model.scoring
        score, result = self._validate_scored(own, valid_data, show_progress, memo)
        if not self.config['meta_diagnostics']:
            self.epoch_diagnostics = {}
            return score, result
        other = ScoringParameters.ADAPTED if own == ScoringParameters.THETA else ScoringParameters.THETA
        other_score, _ = self._validate_scored(other, valid_data, show_progress, memo)
        if 'ratio' not in memo:
            memo['ratio'] = self.model.inner_step_ratio(memo['batch'])
        ratio = memo['ratio']
        scores = {own.value: float(score), other.value: float(other_score)}
        self.epoch_diagnostics = {'inner_step_ratio': ratio, 'valid_at_theta': scores['theta'],
                                  'valid_at_adapted': scores['adapted']}
        self.logger.info(f'meta epoch: inner step ||lambda * grad L_a|| / ||theta|| = {ratio:.4f}; '
                         f"{self.valid_metric} at theta {scores['theta']:.4f}, at theta' {scores['adapted']:.4f}"
                         f' (scored with {own.value})')
        warning = inner_step_warning(ratio, scores['theta'], scores['adapted'], self.model.inner_lr,
                                     self.model.reduction.value)
        if warning and not self.warned_inner_step:
            self.warned_inner_step = True
            self.logger.warning(warning)
        return score, result

    def _validate_scored(self, scoring, valid_data, show_progress, memo):
        """RecBole's validation with cold users scored with ``scoring``, or what ``memo`` holds for it."""
        if scoring not in memo:
            self.model.scoring, own = scoring, self.model.scoring
            try:
                memo[scoring] = super()._valid_epoch(valid_data, show_progress=show_progress)
            finally:
                self.model.scoring = own
        score, result = memo[scoring]
        return score, copy.copy(result)  # each setting keeps its own

    def bridge_loader(self, train_data):
        self.meta_loader = self._meta_task_loader(train_data)
        return self.meta_loader

    def _meta_task_loader(self, train_data):
        return MetaTaskLoader(
            warm_users=self.model.warm_overlap_users, positives=UserPositives.of_target_training(train_data, self.model),
            sampler=train_data.target_dataloader.sampler, neg_per_pos=self.model.neg_per_pos,
            group_size=self.config['meta_group_size'], support_fraction=self.config['meta_support_fraction'],
            groups_per_batch=self.config['meta_groups_per_batch'],
            max_positives_per_user=self.config['meta_max_positives_per_user'])
