"""EMCDR: Embedding and Mapping framework for Cross-Domain Recommendation.

Reference: Tong Man, Huawei Shen, Xiaolong Jin, Xueqi Cheng. "Cross-Domain Recommendation: An Embedding
and Mapping Approach." IJCAI 2017.

Pre-train a source and a target base model, freeze them, then fit a mapping f (one fully connected layer
by default) from u^s to u^t on warm overlapping users by minimising ||f(u^s) - u^t||^2; a cold user is
scored by the target base model with f(u^s). ``EMCDR_MF`` / ``_BPR`` / ``_ListRankMF`` / ``_CML`` differ
only in ``base_model``; ``EMCDR_MFori`` is the original variant whose base models see only the interactions
of overlapping users (``pretrain_users: overlap``).
"""

from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
from recbole_tmcdr.registry import register_model


@register_model('EMCDR_MF', 'EMCDR_BPR', 'EMCDR_ListRankMF', 'EMCDR_CML', 'EMCDR_MFori')
class EMCDR(CrossDomainMappingRecommender):
    """Mapping trained with MSE between f(u^s) and the pre-trained u^t."""

    def bridge_loss(self, interaction):
        return self.mapping_mse_loss(interaction[WARM_USER_FIELD])
