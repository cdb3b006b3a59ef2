"""PTUPCDR: Personalized Transfer of User Preferences for Cross-domain Recommendation.

Reference: Yongchun Zhu, Zhenwei Tang, Yudan Liu, Fuzhen Zhuang, Ruobing Xie, Xu Zhang, Leyu Lin, Qing He.
"Personalized Transfer of User Preferences for Cross-domain Recommendation." WSDM 2022.

Instead of one bridge for everyone, each user gets a personal one, generated from the user's source history:

    characteristic encoder   a_j = softmax_j( h(v_j^s) ),  p_u = sum_j a_j v_j^s      (h: d -> d -> 1 MLP;
                             the softmax runs over the user's (padded, masked) source-history items)
    meta network             W_u = reshape( g(p_u) ) in R^{d x d}                       (g: d -> meta_dim -> d*d)
    personalised bridge      u^t := u^s W_u

The base models are pre-trained and frozen exactly as for EMCDR/TMCDR (same cache). The encoder and the meta
network are trained on the warm overlapping users (OVERLAP phase), with ``ptupcdr_objective``:

- ``task`` (the paper's task-oriented optimisation): the base model's own training loss with u^s W_u as the
  user embedding against the frozen target items, on every training target positive of the batch's users
  plus ``neg_sampling`` negatives each from RecBole's sampler (batches built by
  :class:`~recbole_tmcdr.trainer.ptupcdr_trainer.PTUPCDRTrainer`);
- ``mse``: EMCDR-style ||u^s W_u - u^t||^2 against the pre-trained target embedding.

The source history of every user is the source training interactions, capped at ``ptupcdr_max_history``
items: a fixed random subset (``ptupcdr_history_sampling: random``, seeded) or the most recent ones
(``recent``; needs the source TIME_FIELD in ``load_col``). A cold user is scored by the target base model
with u^s W_u. With implicit feedback the paper's rating MSE is replaced by the base model's loss.
"""

from enum import Enum

import numpy as np
import torch
from torch import nn

from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
from recbole_tmcdr.registry import register_model
from recbole_tmcdr.validation import Rule, positive

# Fields of a task-objective batch (built by recbole_tmcdr.trainer.ptupcdr_trainer): the batch's warm users
# under WARM_USER_FIELD (U,), then per sample: SAMPLE_USER (S,) index into the users, POS (S,), NEG (S, k).
SAMPLE_USER, POS, NEG = 'sample_user', 'pos_item', 'neg_items'


class Objective(str, Enum):
    TASK = 'task'  # base-model loss of the bridged user on its target positives + sampled negatives (paper)
    MSE = 'mse'    # ||u^s W_u - u^t||^2 to the pre-trained target user embedding


class HistorySampling(str, Enum):
    RANDOM = 'random'  # a fixed random subset of the user's source items (seeded)
    RECENT = 'recent'  # the most recent source items (needs the source TIME_FIELD)


class PersonalBridge(nn.Module):
    """Characteristic encoder (attention pooling of history items) + meta network -> W_u (d x d)."""

    def __init__(self, dim, meta_dim):
        super().__init__()
        self.dim = dim
        self.attention = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1, bias=False))
        self.meta = nn.Sequential(nn.Linear(dim, meta_dim), nn.ReLU(), nn.Linear(meta_dim, dim * dim))

    def pool(self, history, mask):
        """Attention pooling: history (B, L, d), mask (B, L) bool -> p_u (B, d) (zero for an empty history)."""
        scores = self.attention(history).squeeze(-1).masked_fill(~mask, float('-inf'))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # an all-padding row has no weight at all
        return (weights.unsqueeze(-1) * history).sum(1)

    def forward(self, history, mask):
        """Personal mapping matrices W_u: (B, d, d)."""
        return self.meta(self.pool(history, mask)).view(-1, self.dim, self.dim)


def padded_history(users, items, times, num_users, max_length, sampling, seed):
    """(num_users, max_length) item ids (0 = padding) of each user's source history, capped by ``sampling``."""
    rng = np.random.default_rng(seed)
    if sampling == HistorySampling.RECENT:
        order = np.lexsort((-times, users))  # by user, most recent first
    else:
        order = np.lexsort((rng.random(len(users)), users))  # by user, random order within a user
    users, items = users[order], items[order]
    starts = np.searchsorted(users, users, side='left')
    rank = np.arange(len(users)) - starts
    keep = rank < max_length
    history = np.zeros((num_users, max_length), dtype=np.int64)
    history[users[keep], rank[keep]] = items[keep]
    return torch.from_numpy(history), torch.from_numpy(history > 0)


@register_model('PTUPCDR')
class PTUPCDR(CrossDomainMappingRecommender):
    """A meta network generates each user's bridge W_u from the attention-pooled source history."""

    trainer = 'PTUPCDRTrainer'
    config_rules = {
        'ptupcdr_objective': Rule('str', choices=tuple(o.value for o in Objective)),
        'ptupcdr_meta_dim': Rule('int', positive, '> 0'),
        'ptupcdr_max_history': Rule('int', positive, '> 0'),
        'ptupcdr_history_sampling': Rule('str', choices=tuple(s.value for s in HistorySampling)),
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        try:
            self.objective = Objective(config['ptupcdr_objective'])
        except ValueError:
            raise ValueError(f"The 'ptupcdr_objective' parameter of PTUPCDR must be one of "
                             f"{[o.value for o in Objective]}. Got {config['ptupcdr_objective']!r} instead.") from None
        try:
            sampling = HistorySampling(config['ptupcdr_history_sampling'])
        except ValueError:
            raise ValueError(f"The 'ptupcdr_history_sampling' parameter of PTUPCDR must be one of "
                             f"{[s.value for s in HistorySampling]}. "
                             f"Got {config['ptupcdr_history_sampling']!r} instead.") from None
        max_history = config['ptupcdr_max_history']
        if not (isinstance(max_history, int) and not isinstance(max_history, bool) and max_history > 0):
            raise ValueError(f"The 'ptupcdr_max_history' parameter of PTUPCDR must be an int > 0. "
                             f'Got {max_history!r} instead.')

        source = dataset.source_domain_dataset
        inter = source.inter_feat
        times = None
        if sampling == HistorySampling.RECENT:
            if not source.time_field or source.time_field not in inter:
                raise ValueError("'ptupcdr_history_sampling: recent' needs the source interaction times: add the "
                                 "source TIME_FIELD to source_domain load_col, or use 'random'.")
            times = inter[source.time_field].numpy()
        history, mask = padded_history(inter[self.SOURCE_USER_ID].numpy(), inter[self.SOURCE_ITEM_ID].numpy(),
                                       times, self.total_num_users, max_history, sampling, config['seed'])
        self.register_buffer('source_history', history, persistent=False)
        self.register_buffer('source_history_mask', mask, persistent=False)

    def build_bridge(self, config):
        meta_dim = config['ptupcdr_meta_dim']
        if not (isinstance(meta_dim, int) and not isinstance(meta_dim, bool) and meta_dim > 0):
            raise ValueError(f"The 'ptupcdr_meta_dim' parameter of PTUPCDR must be an int > 0. "
                             f'Got {meta_dim!r} instead.')
        return PersonalBridge(self.embedding_size, meta_dim)

    # ----- the personalised bridge
    def mapping_matrices(self, user_ids):
        """W_u of each user (B, d, d), from the (frozen) embeddings of the user's source history."""
        history = self.base_model.constrain(self.source_item_embedding(self.source_history[user_ids]))
        return self.bridge(history, self.source_history_mask[user_ids])

    def map_users(self, user_ids):
        """u^s W_u (kept in the base model's embedding domain, e.g. CML's unit ball)."""
        source = self.source_user_vectors(user_ids)
        return self.base_model.constrain(torch.bmm(source.unsqueeze(1), self.mapping_matrices(user_ids)).squeeze(1))

    # ----- training
    def bridge_loss(self, interaction):
        users = interaction[WARM_USER_FIELD]
        mapped = self.map_users(users)
        if self.objective == Objective.MSE:
            target = self.base_model.constrain(self.target_user_embedding(users))
            return ((mapped - target) ** 2).sum(-1).mean()
        per_sample = self.base_model.loss(mapped[interaction[SAMPLE_USER]],
                                          self.target_item_vectors(interaction[POS]),
                                          self.target_item_vectors(interaction[NEG]))
        return per_sample.mean()
