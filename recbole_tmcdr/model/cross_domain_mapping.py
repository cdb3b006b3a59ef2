"""The shared base of every model that maps a source user embedding into the target space.

EMCDR, TMCDR, SSCDR and PTUPCDR all (1) pre-train a source and a target base model, (2) freeze them and
learn a bridge f from u^s to the target user space on warm overlapping users, (3) score a cold user with
the target base model's scorer on f(u^s). They differ only in the bridge and how it is trained, i.e. in
:meth:`build_bridge`, :meth:`map_users` and :meth:`bridge_loss`.
"""

from torch import nn
from recbole.model.init import xavier_normal_initialization

from recbole_tmcdr.model.base_models import make_base_model
from recbole_tmcdr.model.cold_start_recommender import ColdStartRecommender
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.validation import BASE_MODEL_NAMES, Rule, non_negative, positive


def build_mlp(in_dim, hidden_sizes, out_dim, activation='tanh'):
    """``mapping_layers: []`` is one fully connected layer (the papers' default); ``[512]`` adds a hidden
    layer of 512 units with ``activation`` between layers."""
    activations = {'tanh': nn.Tanh, 'relu': nn.ReLU, 'sigmoid': nn.Sigmoid}
    if activation not in activations:
        raise ValueError(f"The 'mapping_activation' parameter must be one of {sorted(activations)}. "
                         f'Got {activation!r} instead.')
    dims = [in_dim, *list(hidden_sizes or []), out_dim]
    layers = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        if i > 0:
            layers.append(activations[activation]())
        layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


class CrossDomainMappingRecommender(ColdStartRecommender):
    """Pre-trained source/target base models + a bridge from source to target user space."""

    train_phases = (Phase.SOURCE, Phase.TARGET, Phase.OVERLAP)
    folds_in = True  # from f(u^s) (kshot_user_representation)
    config_rules = {
        'pretrain_learning_rate': Rule('float', positive, '> 0'),
        'embedding_reg_weight': Rule('float', non_negative, '>= 0'),
        'pretrain_stopping_tol': Rule('float', non_negative, '>= 0'),
        'pretrain_stopping_step': Rule('int', positive, '> 0'),
        'force_pretrain': Rule('bool'),
        'pretrain_users': Rule('str', choices=('all', 'overlap')),
        'base_model': Rule('str', choices=BASE_MODEL_NAMES),
        'cml_margin': Rule('float', positive, '> 0'),
        'mapping_layers': Rule('list', lambda v: all(isinstance(h, int) and h > 0 for h in v), 'of positive integers'),
        'mapping_activation': Rule('str', choices=('tanh', 'relu', 'sigmoid')),
        'mapping_batch_size': Rule('int', positive, '> 0'),
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.base_model = make_base_model(config)
        self.embedding_size = config['embedding_size']
        self.embedding_reg_weight = config['embedding_reg_weight']
        self.pretrain_users = config['pretrain_users']  # 'all' | 'overlap' (checked at start-up)

        # One table per domain and kind, looked up by RecBole-CDR's joint ids (see DomainEmbedding).
        self.source_user_embedding = self.domain_embedding(Phase.SOURCE, 'user', self.embedding_size)
        self.source_item_embedding = self.domain_embedding(Phase.SOURCE, 'item', self.embedding_size)
        self.target_user_embedding = self.domain_embedding(Phase.TARGET, 'user', self.embedding_size)
        self.target_item_embedding = self.domain_embedding(Phase.TARGET, 'item', self.embedding_size)
        self.apply(xavier_normal_initialization)
        self.bridge = self.build_bridge(config)

    # ----- the three things a bridge model defines
    def build_bridge(self, config):
        return build_mlp(self.embedding_size, config['mapping_layers'], self.embedding_size,
                         config['mapping_activation'])

    def map_users(self, user_ids):
        """Target-space representation of (cold) users from their source embedding: f(u^s)."""
        return self.base_model.constrain(self.bridge(self.source_user_vectors(user_ids)))

    def bridge_loss(self, interaction):
        raise NotImplementedError

    def mapping_mse_loss(self, users, mapped=None):
        """EMCDR's objective: ||f(u^s) - u^t||^2 averaged over the batch's warm users (``mapped``: f(u^s) if
        the caller maps them its own way)."""
        target = self.base_model.constrain(self.target_user_embedding(users))
        mapped = self.map_users(users) if mapped is None else mapped
        return ((mapped - target) ** 2).sum(-1).mean()

    # ----- embeddings
    def source_user_vectors(self, user_ids):
        return self.base_model.constrain(self.source_user_embedding(user_ids))

    def target_item_vectors(self, item_ids):
        return self.base_model.constrain(self.target_item_embedding(item_ids))

    def target_item_table(self):
        return self.base_model.constrain(self.target_item_embedding.weight)

    def domain_tables(self, phase):
        if phase == Phase.SOURCE:
            return self.source_user_embedding, self.source_item_embedding
        return self.target_user_embedding, self.target_item_embedding

    def phase_parameters(self, phase):
        if phase in (Phase.SOURCE, Phase.TARGET):
            return [p for table in self.domain_tables(phase) for p in table.parameters()]
        return list(self.bridge.parameters())

    def pretrained_modules(self, phase):
        if phase in (Phase.SOURCE, Phase.TARGET):
            user_table, item_table = self.domain_tables(phase)
            return {'user_embedding': user_table, 'item_embedding': item_table}
        return {}

    def freeze_pretrained(self):
        for phase in (Phase.SOURCE, Phase.TARGET):
            for module in self.pretrained_modules(phase).values():
                module.weight.requires_grad_(False)

    # ----- losses
    def pretrain_loss(self, interaction, phase):
        users, pos_items, neg_items = self.domain_triplets(interaction, phase)
        # EMCDR_MFori: only interactions of overlapping users train the base models.
        weight = (users < self.overlapped_num_users).float() if self.pretrain_users == 'overlap' else None
        user_table, item_table = self.domain_tables(phase)
        return self.triplet_loss(user_table, item_table, users, pos_items, neg_items, weight)

    def calculate_loss(self, interaction):
        if self.phase in (Phase.SOURCE, Phase.TARGET):
            return self.pretrain_loss(interaction, self.phase)
        return self.bridge_loss(interaction)

    # ----- scoring: a cold user is f(u^s) scored by the target base model
    def predict(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        items = interaction[self.TARGET_ITEM_ID]
        return self.base_model.score(self.map_users(users), self.target_item_vectors(items))

    def full_sort_predict(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        return self.base_model.full_scores(self.map_users(users), self.target_item_table()).view(-1)

    def kshot_prior(self, users, support_items):
        """K=0 representation of cold users who revealed K target items, where fold-in starts: f(u^s)."""
        return self.map_users(users)

    def kshot_user_representation(self, users, support_items):
        """Representation of cold users who revealed K target items: the prior folded in on them."""
        return self.foldin(self.base_model, self.kshot_prior(users, support_items), self.target_item_table(),
                           support_items)

    def kshot_full_scores(self, users, support_items):
        return self.base_model.full_scores(self.kshot_user_representation(users, support_items),
                                           self.target_item_table())
