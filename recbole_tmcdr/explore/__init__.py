"""Exploration for cold users, simulated offline (beyond the papers; issue 23).

After the first recommendation a cold user answers, and a system chooses between serving what its model
believes and learning what the user likes. ``python -m recbole_tmcdr.explore`` replays that on the cold TEST
users of a scenario: each arrives with no target history, a policy shows one unseen target item per round
(or a slate), the reward is 1 if the item is among the user's held-out target interactions, and the policy
updates. Policies (:mod:`~recbole_tmcdr.explore.policies`): popularity; the cold-start model as is; greedy,
epsilon-greedy, LinUCB and linear Thompson sampling per user over the frozen target item embeddings, starting
from the model's f(u^s) or the mean warm user; UCB1 and Beta-Bernoulli Thompson over items, shared by the
stream of cold users.

- :mod:`~recbole_tmcdr.explore.settings`: ``properties/explore.yaml`` and its checks;
- :mod:`~recbole_tmcdr.explore.problem`: trained models (cached checkpoints) -> arms, rewards, priors;
- :mod:`~recbole_tmcdr.explore.simulation`: the environment, the arrival of users, regret against the oracle;
- :mod:`~recbole_tmcdr.explore.run`: every (policy, prior) per (scenario, seed), settings chosen on validation;
- :mod:`~recbole_tmcdr.explore.report` and :mod:`~recbole_tmcdr.explore.figures`: RESULTS.md, regret figures.
"""
