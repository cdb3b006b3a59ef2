"""The offline interactive simulation: cold users arrive, a policy shows them items, their held-out rows answer.

Cold test users arrive in a seeded random order, in cohorts of ``cohort_size``. A cohort plays ``rounds``
rounds together (policies whose beliefs are per user play all users as one cohort: nothing passes between
users, so the cohorts change nothing but the batch size): each round the policy shows every user of the cohort ``slate_size`` items it has not shown
that user before, the :class:`Environment` answers 1 for an item among the user's held-out target
interactions and 0 otherwise, and the policy's belief is updated with those rewards. Per-user beliefs start
afresh for every user; the item-level beliefs (UCB1, Beta Thompson) carry on from cohort to cohort.

The oracle knows each user's items: by round t it has hit min(t k, |items_u|) of them, so the regret of a
policy at round t is min(t k, |items_u|) - hits_t (averaged over users).
"""

from dataclasses import dataclass
from time import perf_counter

import numpy as np
import torch

from recbole_tmcdr.explore.policies import ExploreParams, Generators, make_belief


class Environment:
    """The cold users' held-out target items. Only :meth:`reward` reads them; no policy sees this object."""

    def __init__(self, relevant):
        self._relevant = relevant.bool()  # (users, items)

    @property
    def n_users(self):
        return self._relevant.shape[0]

    @property
    def n_items(self):
        return self._relevant.shape[1]

    def reward(self, users, arms):
        """1 where the shown item is one of the user's held-out items: users (U,), arms (U, k) -> (U, k)."""
        return self._relevant[users.unsqueeze(1), arms].to(torch.int64)

    def items_per_user(self):
        return self._relevant.sum(1)


@dataclass
class Problem:
    """Everything a simulation of one (scenario, seed) needs. Only ``environment`` knows the rewards."""
    environment: Environment
    items: torch.Tensor          # (N, d) frozen target item embeddings; arm j is the j-th row
    popularity: torch.Tensor     # (N,) training target interactions per item (warm users only)
    priors: dict                 # name -> LinearPrior over the environment's users


@dataclass
class Trajectory:
    """What one policy did: per user and round the items shown and the hits, and its own computing time."""
    arms: torch.Tensor           # (U, T, k) items shown
    hits: torch.Tensor           # (U, T) hits per round
    policy_seconds: float        # time spent choosing and updating (not in the environment)
    items_per_user: torch.Tensor  # (U,) |items_u|

    @property
    def decisions(self):
        return self.hits.numel()

    def cumulative_hits(self):
        return self.hits.cumsum(1)

    def regret(self):
        """(U, T): min(t k, |items_u|) - hits_t, t = 1..T."""
        rounds, k = self.arms.shape[1], self.arms.shape[2]
        oracle = torch.minimum(k * torch.arange(1, rounds + 1).unsqueeze(0), self.items_per_user.unsqueeze(1))
        return oracle - self.cumulative_hits()


def arrival_cohorts(n_users, cohort_size, seed):
    order = torch.from_numpy(np.random.default_rng(int(seed)).permutation(n_users))
    return list(order.split(cohort_size))


def simulate(problem, policy, rounds, slate_size=1, cohort_size=16, prior=None, params=None, seed=0):
    """Run ``policy`` (a :class:`~recbole_tmcdr.explore.policies.Policy`) over the stream of the problem's
    users; ``prior`` names one of ``problem.priors`` for the policies that use one."""
    env = problem.environment
    if rounds * slate_size > env.n_items:
        raise ValueError(f'rounds x slate_size ({rounds} x {slate_size}) exceeds the {env.n_items} items: no item '
                         'may be shown twice to a user.')
    params = params or ExploreParams()
    generators = Generators.seeded(seed)
    belief = make_belief(policy, env.n_items, items=problem.items, popularity=problem.popularity,
                         prior=problem.priors[prior] if prior is not None else None, params=params)
    arms = torch.zeros(env.n_users, rounds, slate_size, dtype=torch.int64)
    hits = torch.zeros(env.n_users, rounds, dtype=torch.int64)
    seconds = 0.0
    # per-user beliefs share nothing across users: all users at once (same results, one batch per round)
    cohort_size = cohort_size if policy.shared else env.n_users
    for users in arrival_cohorts(env.n_users, cohort_size, seed):
        start = perf_counter()
        belief.start(users)
        shown = torch.zeros(len(users), env.n_items, dtype=torch.bool)
        seconds += perf_counter() - start
        for t in range(rounds):
            start = perf_counter()
            chosen = policy.rule(belief, shown, slate_size, params, generators)
            seconds += perf_counter() - start
            rewards = env.reward(users, chosen)
            start = perf_counter()
            belief.update(chosen, rewards)
            shown.scatter_(1, chosen, True)
            seconds += perf_counter() - start
            arms[users, t] = chosen
            hits[users, t] = rewards.sum(1)
    return Trajectory(arms=arms, hits=hits, policy_seconds=seconds, items_per_user=env.items_per_user())

