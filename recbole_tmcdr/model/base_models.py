"""The four base models of TMCDR's transfer stage, behind one small interface: score + loss.

A base model owns no parameters: it scores (user, item) embedding pairs and computes its own training loss
on (user embeddings, positive item embeddings, negative item embeddings). The same loss therefore serves
pre-training (user embeddings from a table) and TMCDR's task-oriented meta stage (user embeddings
f_theta(u^s)). Losses are per sample (one positive and its k negatives); callers choose the reduction.

- MF: pointwise, sigmoid(u.v) with binary cross-entropy on the positive and the sampled negatives.
- BPR: -log sigmoid(u.v_pos - u.v_neg), summed over the k negatives (Rendle et al., UAI 2009).
- ListRankMF: top-one probability cross-entropy over the list (positive, negatives), with
  g = sigmoid applied to the scores before the softmax (Shi et al., RecSys 2010); labels are one-hot.
- CML: score = -||u - v||^2, hinge [margin - s_pos + s_neg]_+ per negative, embeddings kept in the unit
  ball (Hsieh et al., WWW 2017).
"""

import torch
import torch.nn.functional as F

from recbole_tmcdr.registry import Registry

BASE_MODELS = Registry('base model')


class BaseModel:
    name = None

    def __init__(self, config):
        self.config = config

    def score(self, user_emb, item_emb):
        """Scores of matching rows, broadcast over leading dimensions: (..., d), (..., d) -> (...)."""
        raise NotImplementedError

    def full_scores(self, user_emb, item_table):
        """Scores of every user against every item: (B, d), (N, d) -> (B, N)."""
        raise NotImplementedError

    def pair_scores(self, user_emb, pos_emb, neg_emb):
        """Scores of each sample's positive and negatives: (B, d), (B, d), (B, k, d) -> (B,), (B, k)."""
        raise NotImplementedError

    def loss_from_scores(self, pos_score, neg_score):
        """Per-sample loss from the scores of the positive (B,) and of the k negatives (B, k) -> (B,)."""
        raise NotImplementedError

    def loss(self, user_emb, pos_emb, neg_emb):
        """Per-sample loss: user (B, d), positive (B, d), negatives (B, k, d) -> (B,)."""
        return self.loss_from_scores(*self.pair_scores(user_emb, pos_emb, neg_emb))

    def sample_loss(self, user_emb, item_emb):
        """Per-sample loss with each sample's items in one tensor, positive first: user (B, d), items
        (B, 1 + k, d) -> (B,). Pre-training looks the items up this way: one gather of the item table, hence one
        (dense) gradient of it per step instead of one for the positives and one for the negatives."""
        scores = self.score(user_emb.unsqueeze(-2), item_emb)
        return self.loss_from_scores(scores[..., 0], scores[..., 1:])

    def constrain(self, emb):
        """Projection applied to looked-up embeddings (identity except for CML)."""
        return emb


def negative_dots(user_emb, neg_emb):
    """u . v for each of a sample's k negatives: (B, d), (B, k, d) -> (B, k). A batched mat-vec rather than
    ``(u.unsqueeze(-2) * neg).sum(-1)``, which writes and re-reads a (B, k, d) temporary."""
    return (neg_emb @ user_emb.unsqueeze(-1)).squeeze(-1)


class DotProductModel(BaseModel):
    def score(self, user_emb, item_emb):
        return (user_emb * item_emb).sum(-1)

    def full_scores(self, user_emb, item_table):
        return user_emb @ item_table.T

    def pair_scores(self, user_emb, pos_emb, neg_emb):
        return self.score(user_emb, pos_emb), negative_dots(user_emb, neg_emb)


class MF(DotProductModel):
    name = 'MF'

    def loss_from_scores(self, pos_score, neg_score):
        # BCE with logits: -log sigmoid(pos) - sum log(1 - sigmoid(neg))
        return F.softplus(-pos_score) + F.softplus(neg_score).sum(-1)


class BPR(DotProductModel):
    name = 'BPR'

    def loss_from_scores(self, pos_score, neg_score):
        return F.softplus(neg_score - pos_score.unsqueeze(-1)).sum(-1)


class ListRankMF(DotProductModel):
    name = 'ListRankMF'

    def loss_from_scores(self, pos_score, neg_score):
        logits = torch.sigmoid(torch.cat([pos_score.unsqueeze(-1), neg_score], dim=-1))
        return -torch.log_softmax(logits, dim=-1)[..., 0]


class CML(BaseModel):
    name = 'CML'

    def __init__(self, config):
        super().__init__(config)
        self.margin = config['cml_margin']

    def score(self, user_emb, item_emb):
        return -((user_emb - item_emb) ** 2).sum(-1)

    def full_scores(self, user_emb, item_table):
        return -((user_emb ** 2).sum(-1, keepdim=True) - 2 * user_emb @ item_table.T + (item_table ** 2).sum(-1))

    def pair_scores(self, user_emb, pos_emb, neg_emb):
        # -||u - v||^2 = 2 u.v - ||u||^2 - ||v||^2, with u.v as a mat-vec (see negative_dots)
        neg = 2 * negative_dots(user_emb, neg_emb) - (user_emb ** 2).sum(-1, keepdim=True) - (neg_emb ** 2).sum(-1)
        return self.score(user_emb, pos_emb), neg

    def loss_from_scores(self, pos_score, neg_score):
        return F.relu(self.margin - pos_score.unsqueeze(-1) + neg_score).sum(-1)

    def constrain(self, emb):
        # Keep embeddings in the unit ball (differentiable clip of the norm).
        norm = emb.norm(dim=-1, keepdim=True).clamp(min=1.0)
        return emb / norm


for _cls in (MF, BPR, ListRankMF, CML):
    BASE_MODELS.register(_cls.name, _cls)


def make_base_model(config):
    return BASE_MODELS.get(config['base_model'])(config)
