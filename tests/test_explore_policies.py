"""Exploration policies on synthetic problems whose answers are known (no model, no RecBole data)."""

import numpy as np
import pytest
import torch

from recbole_tmcdr.explore.policies import (
    DTYPE, POLICIES, ExploreParams, Generators, LinearPrior, UserLinear,
)
from recbole_tmcdr.explore.simulation import Environment, Problem, arrival_cohorts, simulate


def linear_problem(n_users=30, n_items=40, dim=4, per_user=5, seed=0):
    """Users' held-out items are their top ``per_user`` items under x . theta_u; returns (problem, theta)."""
    rng = np.random.default_rng(seed)
    items = torch.from_numpy(rng.normal(size=(n_items, dim)))
    theta = torch.from_numpy(rng.normal(size=(n_users, dim)))
    top = (theta @ items.T).topk(per_user, dim=1).indices
    relevant = torch.zeros(n_users, n_items, dtype=torch.bool).scatter_(1, top, True)
    priors = {
        'true': LinearPrior(theta, slope=1.0, intercept=0.0, noise=0.5),
        'wrong': LinearPrior(-theta, slope=1.0, intercept=0.0, noise=0.5),
    }
    popularity = torch.from_numpy(rng.integers(0, 10, size=n_items)).double()
    return Problem(Environment(relevant), items, popularity, priors), theta


def bernoulli_stream(rates, n_users, seed=0):
    """Each user takes item i with probability rates[i], independently: item-level arms with a known best."""
    rng = np.random.default_rng(seed)
    relevant = torch.from_numpy(rng.random((n_users, len(rates))) < np.asarray(rates))
    n = len(rates)
    return Problem(Environment(relevant), torch.eye(n, dtype=DTYPE), torch.zeros(n, dtype=DTYPE), {})


def test_sherman_morrison_updates_match_the_explicit_inverse():
    problem, theta = linear_problem(n_users=3, n_items=12, dim=3)
    params = ExploreParams(prior_strength=2.0, bias_strength=0.5)
    belief = UserLinear(problem.items, problem.priors['true'], params)
    belief.start(torch.arange(3))
    arms = torch.tensor([[0, 5], [1, 2], [7, 11]])
    rewards = torch.tensor([[1, 0], [0, 0], [1, 1]])
    belief.update(arms, rewards)
    features = torch.cat([problem.items, torch.ones(12, 1, dtype=DTYPE)], 1)  # [x, 1]: the per-user bias
    precision = torch.diag(torch.tensor([belief.lambda0] * 3 + [0.5], dtype=DTYPE))
    for u in range(3):
        x = features[arms[u]]
        a = precision + x.T @ x
        prior_mean = torch.cat([theta[u], torch.zeros(1, dtype=DTYPE)])
        b = precision @ prior_mean + (rewards[u].double().unsqueeze(1) * x).sum(0)
        torch.testing.assert_close(belief.a_inv[u], torch.linalg.inv(a))
        torch.testing.assert_close(belief.theta()[u], torch.linalg.solve(a, b))
        torch.testing.assert_close(belief.width2[u], ((features @ torch.linalg.inv(a)) * features).sum(1))


def test_prior_strength_counts_in_shown_items():
    problem, _ = linear_problem(dim=4)
    belief = UserLinear(problem.items, problem.priors['true'], ExploreParams(prior_strength=3.0))
    mean_norm = float((problem.items ** 2).sum(1).mean())
    assert belief.lambda0 * 4 == pytest.approx(3.0 * mean_norm)  # trace of A_0 on theta = 3 average x x^T


def test_the_bias_absorbs_a_run_of_misses():
    """Misses on every item shown lower the user's bias; with a free bias the ranking of the rest barely moves."""
    problem, _ = linear_problem(n_users=1, n_items=40, dim=4)
    order = {}
    for bias_strength in (1e-3, 1e6):
        belief = UserLinear(problem.items, problem.priors['true'], ExploreParams(prior_strength=1.0,
                                                                                  bias_strength=bias_strength))
        belief.start(torch.arange(1))
        before = belief.mean()[0]
        top = before.topk(5).indices
        belief.update(top.view(1, -1), torch.zeros(1, 5, dtype=torch.int64))
        rest = torch.ones(40, dtype=torch.bool).index_fill_(0, top, False)
        after = belief.mean()[0]
        order[bias_strength] = float(torch.corrcoef(torch.stack([before[rest], after[rest]]))[0, 1])
    assert order[1e-3] > order[1e6]


@pytest.mark.parametrize('name', POLICIES.names())
def test_no_policy_shows_an_item_twice(name):
    problem, _ = linear_problem(n_users=7, n_items=15)
    policy = POLICIES.get(name)
    trajectory = simulate(problem, policy, rounds=5, slate_size=3, cohort_size=3,
                          prior='true' if policy.uses_prior else None, seed=1)
    shown = trajectory.arms.flatten(1)
    assert all(len(set(row.tolist())) == 15 for row in shown)  # 5 rounds x 3 = every item exactly once
    # having shown everything, every policy has found all of each user's items: no regret left
    assert torch.equal(trajectory.regret()[:, -1], torch.zeros(7, dtype=torch.int64))


@pytest.mark.parametrize('name', POLICIES.names())
def test_rewards_come_only_from_the_users_held_out_items(name):
    problem, _ = linear_problem(n_users=9, n_items=30)
    relevant = problem.environment._relevant
    policy = POLICIES.get(name)
    trajectory = simulate(problem, policy, rounds=6, slate_size=2, cohort_size=4,
                          prior='wrong' if policy.uses_prior else None, seed=3)
    expected = relevant.gather(1, trajectory.arms.flatten(1)).view(trajectory.arms.shape).sum(-1)
    assert torch.equal(trajectory.hits, expected.long())
    assert bool((trajectory.cumulative_hits()[:, -1] <= relevant.sum(1)).all())
    assert bool((trajectory.regret() >= 0).all())


def test_environment_answers_one_exactly_for_held_out_items():
    relevant = torch.tensor([[True, False, True], [False, False, True]])
    env = Environment(relevant)
    assert env.reward(torch.tensor([0, 1]), torch.tensor([[0, 1], [2, 0]])).tolist() == [[1, 0], [1, 0]]


def pseudo_regret(trajectory, rates):
    """sum over the stream of (best rate - rate of the item shown), in arrival order."""
    rates = torch.tensor(rates, dtype=DTYPE)
    return (rates.max() - rates[trajectory.arms[:, 0, 0]])


def test_item_level_ucb1_and_thompson_find_the_best_arm_with_sublinear_regret():
    rates = [0.7, 0.4, 0.3, 0.2]
    n_users, cohort, seed = 12000, 40, 6
    problem = bernoulli_stream(rates, n_users=n_users, seed=seed)
    order = torch.cat(arrival_cohorts(n_users, cohort, seed=seed))  # the stream's arrival order
    totals, halves = {}, {}
    for name in ('ucb1', 'beta_thompson', 'item_epsilon_greedy'):
        trajectory = simulate(problem, POLICIES.get(name), rounds=1, cohort_size=cohort, seed=seed)
        regret = pseudo_regret(trajectory, rates)[order]
        first, second = float(regret[:n_users // 2].sum()), float(regret[n_users // 2:].sum())
        totals[name], halves[name] = first + second, second / first
    # (measured over seeds 5-8: UCB1 0.00-0.41, Thompson 0.03-0.06, epsilon-greedy 0.89-1.01)
    assert halves['ucb1'] < 0.6 and halves['beta_thompson'] < 0.6  # logarithmic: the second half adds little
    assert halves['item_epsilon_greedy'] > 0.8                       # epsilon = 0.1 explores forever: linear
    assert totals['ucb1'] < totals['item_epsilon_greedy']
    assert totals['beta_thompson'] < totals['item_epsilon_greedy']


@pytest.mark.parametrize('name', ['linucb', 'linear_thompson', 'greedy'])
def test_linear_policies_with_the_true_user_vector_as_a_strong_prior_have_near_zero_regret(name):
    problem, _ = linear_problem(n_users=30, n_items=40, per_user=5)
    params = ExploreParams(prior_strength=1e6)
    strong = simulate(problem, POLICIES.get(name), rounds=10, prior='true', params=params, seed=0)
    assert float(strong.regret()[:, -1].double().mean()) <= 0.05
    misled = simulate(problem, POLICIES.get(name), rounds=10, prior='wrong', params=params, seed=0)
    assert float(misled.regret()[:, -1].double().mean()) >= 3.0


def test_feedback_moves_a_weak_prior_towards_the_users_items():
    """From the wrong prior, a weak prior lets the refitted greedy recover hits the strong one never finds."""
    problem, _ = linear_problem(n_users=30, n_items=40, per_user=8)
    hits = {strength: float(simulate(problem, POLICIES.get('linucb'), rounds=20, prior='wrong',
                                     params=ExploreParams(prior_strength=strength), seed=0)
                            .cumulative_hits()[:, -1].double().mean())
            for strength in (0.5, 1e6)}
    assert hits[0.5] > hits[1e6] + 1.0


def test_generators_are_reproducible():
    a, b = Generators.seeded(4), Generators.seeded(4)
    assert torch.equal(torch.rand(3, generator=a.torch), torch.rand(3, generator=b.torch))
    problem, _ = linear_problem()
    runs = [simulate(problem, POLICIES.get('linear_thompson'), rounds=5, prior='true', seed=2) for _ in range(2)]
    assert torch.equal(runs[0].arms, runs[1].arms)
