"""Exploration policies for cold users, each one belief about the rewards plus one rule that acts on it.

A belief answers three questions for a cohort of users: the expected reward of every item (``mean``), an
optimistic index (``upper``) and a draw from its posterior (``sample``); ``update`` feeds it the rewards of
the items shown. A rule picks the items to show from one of these:

- ``greedy`` the mean, ``epsilon_greedy`` the mean or, with probability epsilon, a uniformly random item,
  ``ucb`` the upper index, ``thompson`` the posterior draw.

Beliefs (all batched over the users of a cohort; none loops over users):

- :class:`FixedScores`: one score per (user, item) that never changes: target popularity, or the prior's own
  ranking (the cold-start model as it is, no feedback used: policy ``static``).
- :class:`UserLinear`: one Bayesian linear model per user over the frozen target item embeddings x_i,
  r_ui = c + x_i . theta_u + beta_u + noise(sigma), with the priors theta_u ~ N(mu_u, sigma^2 / lambda0 I) and
  beta_u ~ N(0, sigma^2 / bias_strength) (a per-user bias). mu_u is the calibrated cold representation
  (``s f(u^s)`` of a mapping model, or ``s`` times the mean warm user for "no transfer"). Each shown item
  updates A^-1 by Sherman-Morrison (one rank-one update per slate slot, batched over users), b += (r - c) x,
  and theta_hat = A^-1 b is the ridge regression pulled towards mu_u: the user's representation refitted on
  the feedback so far. The squared widths x_i^T A^-1 x_i of all items follow the same rank-one update, so
  LinUCB costs O(users x items x d) per round.
- :class:`ItemCounts`: one Bernoulli arm per item shared by every cold user of the stream (what cold users
  take in general): UCB1 (``mean_i + sqrt(c ln n / n_i)``, unplayed items first) and Beta-Bernoulli Thompson
  (``Beta(a + hits_i, b + misses_i)``).

:data:`POLICIES` is the one table of policy names.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from recbole_tmcdr.registry import Registry

DTYPE = torch.float64
UNPLAYED = 1e12  # UCB1's index of an item no cold user has been shown yet (played first)
TIE_NOISE = 1e-9  # breaks exact ties (equal popularity counts, unplayed items) at random


@dataclass(frozen=True)
class LinearPrior:
    """Calibrated prior of the per-user linear model: r ~ intercept + x . theta, theta ~ N(mean, ...)."""
    representation: torch.Tensor  # (users, d): the cold representation (f(u^s), or the mean warm user)
    slope: float                  # s >= 0: the prior mean of theta is s * representation
    intercept: float              # c: reward of an item whose x . theta is 0
    noise: float                  # sigma: residual standard deviation of a reward around the linear prediction
    name: str = 'prior'

    @property
    def mean(self):
        return self.slope * self.representation


@dataclass(frozen=True)
class ExploreParams:
    """The policies' settings (``properties/explore.yaml``)."""
    prior_strength: float = 10.0
    bias_strength: float = 1.0
    epsilon: float = 0.1
    linucb_alpha: float = 1.0
    thompson_scale: float = 1.0
    ucb1_c: float = 2.0
    beta_prior: tuple = (1.0, 1.0)


class Belief:
    """What a policy believes about the rewards of the users of the current cohort."""

    def start(self, users):
        """A new cohort arrives: ``users`` are indices into the problem's user axis."""
        self.users = users

    def mean(self):
        raise NotImplementedError

    def upper(self):
        raise NotImplementedError(f'{type(self).__name__} has no optimistic index')

    def sample(self, generators):
        raise NotImplementedError(f'{type(self).__name__} has no posterior to sample')

    def update(self, arms, rewards):
        """``arms`` (U, k) shown to the cohort's users, ``rewards`` (U, k) in {0, 1}."""


class FixedScores(Belief):
    """Scores that no feedback changes: (items,) shared by all users, or (users, items)."""

    def __init__(self, scores):
        self.scores = scores.to(DTYPE)

    def mean(self):
        if self.scores.dim() == 1:
            return self.scores.unsqueeze(0).expand(len(self.users), -1)
        return self.scores[self.users]


class UserLinear(Belief):
    """Per-user Bayesian linear regression over the item embeddings and a per-user bias, from a calibrated prior."""

    def __init__(self, items, prior, params, track_width=True):
        items = items.to(DTYPE)
        n, d = items.shape
        self.prior, self.params = prior, params
        self.track_width = track_width  # only LinUCB reads the widths: the others skip their O(U N d) update
        # features [x_i, 1]: the bias absorbs a user's overall hit rate, so that a run of misses lowers every
        # item alike instead of turning theta away from the items shown (Li et al. 2010 use such a feature too)
        self.features = torch.cat([items, torch.ones(n, 1, dtype=DTYPE)], 1)     # (N, d + 1)
        # prior precision: lambda0 on theta, lambda0 = prior_strength x the mean item's ||x||^2 / d, so that the prior
        # weighs about as much as prior_strength shown items whatever the embeddings' scale; bias_strength on the bias
        self.lambda0 = params.prior_strength * float((items ** 2).sum(1).mean()) / d
        self.precision = torch.cat([torch.full((d,), self.lambda0, dtype=DTYPE),
                                    torch.tensor([params.bias_strength], dtype=DTYPE)])

    def start(self, users):
        super().start(users)
        mu = self.prior.mean[users].to(DTYPE)                                    # (U, d)
        mu = torch.cat([mu, torch.zeros(len(users), 1, dtype=DTYPE)], 1)         # the bias starts at 0
        self.a_inv = torch.diag(1.0 / self.precision).repeat(len(users), 1, 1)  # (U, d + 1, d + 1)
        self.b = self.precision * mu                                             # theta_hat = mu before feedback
        if self.track_width:
            self.width2 = ((self.features ** 2) / self.precision).sum(1).repeat(len(users), 1)  # x^T A^-1 x, (U, N)

    def theta(self):
        return (self.a_inv @ self.b.unsqueeze(-1)).squeeze(-1)

    def mean(self):
        return self.prior.intercept + self.theta() @ self.features.T

    def upper(self):
        bonus = self.params.linucb_alpha * self.prior.noise * self.width2.clamp(min=0).sqrt()
        return self.mean() + bonus

    def sample(self, generators):
        # theta ~ N(theta_hat, (scale sigma)^2 A^-1); A^-1 = L L^T, symmetrised against round-off
        a_inv = (self.a_inv + self.a_inv.transpose(1, 2)) / 2
        chol = torch.linalg.cholesky(a_inv)
        z = torch.randn(self.b.shape, generator=generators.torch, dtype=DTYPE)
        draw = self.theta() + self.params.thompson_scale * self.prior.noise * (chol @ z.unsqueeze(-1)).squeeze(-1)
        return self.prior.intercept + draw @ self.features.T

    def update(self, arms, rewards):
        for slot in range(arms.shape[1]):  # one Sherman-Morrison update per slate slot, batched over users
            x = self.features[arms[:, slot]]                            # (U, d + 1)
            a_inv_x = (self.a_inv @ x.unsqueeze(-1)).squeeze(-1)        # (U, d + 1)
            denominator = 1.0 + (x * a_inv_x).sum(1, keepdim=True)      # (U, 1)
            self.a_inv -= a_inv_x.unsqueeze(-1) * a_inv_x.unsqueeze(1) / denominator.unsqueeze(-1)
            if self.track_width:
                self.width2 -= (a_inv_x @ self.features.T) ** 2 / denominator
            self.b += (rewards[:, slot:slot + 1].to(DTYPE) - self.prior.intercept) * x


class ItemCounts(Belief):
    """Every item is one Bernoulli arm shared by the whole stream of cold users."""

    def __init__(self, n_items, params):
        self.params = params
        self.hits = torch.zeros(n_items, dtype=DTYPE)
        self.plays = torch.zeros(n_items, dtype=DTYPE)

    def _per_user(self, scores):
        return scores.unsqueeze(0).expand(len(self.users), -1)

    def mean(self):
        return self._per_user(self.hits / self.plays.clamp(min=1))

    def upper(self):
        total = float(self.plays.sum())
        bonus = torch.sqrt(self.params.ucb1_c * math.log(max(total, 1.0)) / self.plays.clamp(min=1))
        index = torch.where(self.plays > 0, self.hits / self.plays.clamp(min=1) + bonus,
                            torch.full_like(self.plays, UNPLAYED))
        return self._per_user(index)

    def sample(self, generators):
        a, b = self.params.beta_prior
        draws = generators.numpy.beta((a + self.hits).numpy(), (b + self.plays - self.hits).numpy(),
                                      size=(len(self.users), len(self.hits)))
        return torch.from_numpy(draws)

    def update(self, arms, rewards):
        # the cohort's feedback of one round, applied together (delayed by at most one round)
        self.plays.index_add_(0, arms.reshape(-1), torch.ones(arms.numel(), dtype=DTYPE))
        self.hits.index_add_(0, arms.reshape(-1), rewards.reshape(-1).to(DTYPE))


@dataclass
class Generators:
    """The random streams of one simulated policy (seeded)."""
    torch: torch.Generator
    numpy: np.random.Generator

    @classmethod
    def seeded(cls, seed):
        return cls(torch.Generator().manual_seed(int(seed)), np.random.default_rng(int(seed)))


def top_unshown(scores, shown, k, generators):
    """The k best items per user among those not shown yet, exact ties broken at random: (U, k)."""
    jitter = TIE_NOISE * torch.rand(scores.shape, generator=generators.torch, dtype=DTYPE)
    scores = (scores.to(DTYPE) + jitter * scores.abs().clamp(min=1.0)).masked_fill(shown, -math.inf)
    return scores.topk(k, dim=1).indices


def greedy(belief, shown, k, params, generators):
    return top_unshown(belief.mean(), shown, k, generators)


def epsilon_greedy(belief, shown, k, params, generators):
    """Each user explores with probability epsilon this round: its slate is then uniformly random."""
    scores = belief.mean()
    explore = torch.rand(len(scores), generator=generators.torch, dtype=DTYPE) < params.epsilon
    if explore.any():
        random_scores = torch.rand(scores.shape, generator=generators.torch, dtype=DTYPE)
        scores = torch.where(explore.unsqueeze(1), random_scores, scores)
    return top_unshown(scores, shown, k, generators)


def ucb(belief, shown, k, params, generators):
    return top_unshown(belief.upper(), shown, k, generators)


def thompson(belief, shown, k, params, generators):
    return top_unshown(belief.sample(generators), shown, k, generators)


LINEAR = ('prior_strength', 'bias_strength')


@dataclass(frozen=True)
class Policy:
    belief: str         # 'popularity' | 'prior' (fixed prior ranking) | 'linear' (per user) | 'items' (shared)
    rule: object        # greedy | epsilon_greedy | ucb | thompson
    description: str
    params: tuple = ()  # the settings (ExploreParams fields) it reads, searched on validation users if asked

    @property
    def shared(self):
        """One belief for the whole stream of users (the item-level bandits)."""
        return self.belief == 'items'

    @property
    def uses_prior(self):
        """Run once per prior (each mapping model's f(u^s), and the mean warm user)."""
        return self.belief in ('prior', 'linear')


POLICIES = Registry('policy')
for _name, _policy in {
    'popularity': Policy('popularity', greedy, 'most popular unshown target item (training counts); no learning'),
    'static': Policy('prior', greedy, "the prior's own ranking (the cold-start model as is); no learning"),
    'greedy': Policy('linear', greedy, "best item under the user's representation refitted on the feedback", LINEAR),
    'epsilon_greedy': Policy('linear', epsilon_greedy, 'greedy, or with probability epsilon a random item',
                             LINEAR + ('epsilon',)),
    'linucb': Policy('linear', ucb, 'LinUCB: refitted mean + alpha sigma sqrt(x^T A^-1 x)', LINEAR + ('linucb_alpha',)),
    'linear_thompson': Policy('linear', thompson, "linear Thompson sampling from the user's posterior",
                              LINEAR + ('thompson_scale',)),
    'ucb1': Policy('items', ucb, 'UCB1 over items, shared by the stream of cold users', ('ucb1_c',)),
    'beta_thompson': Policy('items', thompson, 'Beta-Bernoulli Thompson sampling over items, shared by the stream',
                            ('beta_prior',)),
    'item_epsilon_greedy': Policy('items', epsilon_greedy, "epsilon-greedy on the items' shared hit rates",
                                  ('epsilon',)),
}.items():
    POLICIES.register(_name, _policy)


def make_belief(policy, n_items, items=None, popularity=None, prior=None, params=ExploreParams()):
    """The belief a :class:`Policy` acts on, for one simulated stream."""
    if policy.belief == 'popularity':
        return FixedScores(popularity)
    if policy.belief == 'prior':  # the model's own scores u . x (its ranking whatever the calibration)
        return FixedScores(prior.representation.to(DTYPE) @ items.to(DTYPE).T)
    if policy.belief == 'linear':
        return UserLinear(items, prior, params, track_width=policy.rule is ucb)
    return ItemCounts(n_items, params)
