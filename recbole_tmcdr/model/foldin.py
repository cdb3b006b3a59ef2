"""Fold-in: fit a cold user's target representation on the K target items they revealed (beyond the papers).

The K-shot protocol (:mod:`recbole_tmcdr.kshot`) reveals a cold user's first K target interactions. Fold-in keeps
the item embeddings frozen and fits only the user's vector on them, starting from the model's K=0 representation
(the prior: f(u^s) for the mapping models, the user's own vector for the merged-domain models, the mean warm user
for the target-only floors). It minimises, per user,

    mean over the K positives of  base_loss(u, v_pos, v_neg_1..k)  +  prior_weight * ||u - u_prior||^2

with ``steps`` plain gradient steps of size ``lr`` (fresh uniform negatives at each step, drawn with the seed, so a
run is reproducible). All users of a batch are fitted at once: the only Python loop is over the steps. The base
losses here (BCE, BPR, list-wise, hinge) have no closed form, hence gradient steps.

The three settings live in YAML (``kshot_foldin_steps``, ``kshot_foldin_lr``, ``kshot_foldin_prior_weight``); each
is a number or a mapping ``{K: value}``, so that a value chosen per K on the cold validation users
(:func:`recbole_tmcdr.kshot.evaluate_kshot` on the validation loader) can be written down as it was selected.
``kshot_foldin_search`` (a grid ``{setting: [values]}``) has every run choose them per K on its cold validation users
after training (:func:`recbole_tmcdr.kshot.choose_foldin`), before its K-shot results are computed.
"""

import numbers

import torch

from recbole_tmcdr.validation import Rule, is_int


def per_k(check):
    """A value accepted by ``check``, or a non-empty mapping {K (int >= 0): such a value}."""
    def accepts(value):
        if isinstance(value, dict):
            return bool(value) and all(is_int(k) and k >= 0 and check(v) for k, v in value.items())
        return check(value)
    return accepts


def _real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# The settings kshot_foldin_search may list, and the check of each value.
SEARCH_CHECKS = {'steps': lambda v: is_int(v) and v >= 0, 'lr': lambda v: _real(v) and v > 0,
                 'prior_weight': lambda v: _real(v) and v >= 0}

FOLDIN_RULES = {
    'kshot_foldin_steps': Rule('any', per_k(lambda v: is_int(v) and v >= 0),
                               'an int >= 0, or a mapping {K: int >= 0}'),
    'kshot_foldin_lr': Rule('any', per_k(lambda v: _real(v) and v > 0), 'a float > 0, or a mapping {K: float > 0}'),
    'kshot_foldin_prior_weight': Rule('any', per_k(lambda v: _real(v) and v >= 0),
                                      'a float >= 0, or a mapping {K: float >= 0}'),
    'kshot_foldin_search': Rule('dict', lambda v: all(
        name in SEARCH_CHECKS and isinstance(values, list) and values and all(map(SEARCH_CHECKS[name], values))
        for name, values in v.items()), 'mapping some of steps (ints >= 0), lr (floats > 0), prior_weight (floats '
        '>= 0) to non-empty lists of values, e.g. {steps: [0, 10], lr: [0.1, 0.3]}', nullable=True),
}


def value_at_k(value, k):
    """A setting at K: the number itself, or from a {K: value} mapping the entry of the largest listed K <= k (the
    smallest listed K when every listed K is larger)."""
    if not isinstance(value, dict):
        return value
    listed = sorted(value)
    below = [key for key in listed if key <= k]
    return value[below[-1] if below else listed[0]]


def fold_in(base_model, prior, item_table, support, negatives, steps, lr, prior_weight):
    """Users' vectors fitted on their support items with the items frozen.

    Args:
        base_model: a :mod:`recbole_tmcdr.model.base_models` model (its ``loss`` and ``constrain``).
        prior: (B, d) K=0 representations, the starting point and the centre of the prior term.
        item_table: (N, d) target item embeddings (constrained; not trained).
        support: (B, K) revealed items of each user.
        negatives: (steps, B, K, k) sampled negatives of each step.
    Returns: (B, d) fitted representations (``prior`` itself when ``steps`` is 0 or K is 0).
    """
    prior = prior.detach()
    n_users, n_shots = support.shape
    if steps == 0 or n_shots == 0:
        return prior
    item_table = item_table.detach()
    positives = item_table[support].reshape(n_users * n_shots, -1)
    user = prior.clone()
    for step in range(steps):
        with torch.enable_grad():
            user.requires_grad_(True)
            loss = support_loss(base_model, user, positives, item_table[negatives[step]], n_shots)
            loss = loss + prior_weight * ((user - prior) ** 2).sum(-1)
            gradient, = torch.autograd.grad(loss.sum(), user)  # users are independent: row b is user b's gradient
        user = (user - lr * gradient).detach()
    return base_model.constrain(user)


def support_loss(base_model, user, positives, negative_vectors, n_shots):
    """Each user's base-model loss averaged over their K support samples: (B, d), (B*K, d), (B, K, k, d) -> (B,)."""
    n_users, dim = user.shape
    repeated = base_model.constrain(user).repeat_interleave(n_shots, 0)
    per_sample = base_model.loss(repeated, positives, negative_vectors.reshape(n_users * n_shots, -1, dim))
    return per_sample.view(n_users, n_shots).mean(1)


class FoldIn:
    """The fold-in settings of one model (read from its config) and the negatives it samples."""

    def __init__(self, config, neg_per_pos):
        self.steps = config['kshot_foldin_steps']
        self.lr = config['kshot_foldin_lr']
        self.prior_weight = config['kshot_foldin_prior_weight']
        self.neg_per_pos = neg_per_pos
        self.seed = config['seed']

    def negatives(self, steps, support, num_items):
        """(steps, B, K, k) uniform negatives in [1, num_items), the same for the same call (seeded)."""
        # drawn on the CPU with a CPU generator, so a seed gives the same negatives on every device
        generator = torch.Generator(device='cpu').manual_seed(self.seed)
        drawn = torch.randint(1, num_items, (steps, *support.shape, self.neg_per_pos), generator=generator,
                              device='cpu')
        return drawn.to(support.device)

    def __call__(self, base_model, prior, item_table, support_items):
        """Fitted representations of users given their K support items (a list of equal-length tensors)."""
        n_shots = len(support_items[0]) if len(support_items) else 0
        steps = value_at_k(self.steps, n_shots)
        if n_shots == 0 or steps == 0:
            return prior
        support = torch.stack(list(support_items)).to(prior.device)
        return fold_in(base_model, prior, item_table, support, self.negatives(steps, support, len(item_table)),
                       steps, value_at_k(self.lr, n_shots), value_at_k(self.prior_weight, n_shots))
