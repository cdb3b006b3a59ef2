"""K-shot warm-up evaluation: support masking, exclusion counts, test-time adaptation."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from recbole_tmcdr import run_recbole_cdr
from recbole_tmcdr.data import prepare_scenario
from recbole_tmcdr.kshot import per_user_rows
from recbole_tmcdr.validation import ConfigError

from conftest import fast_config

PHASES = ["SOURCE:3", "TARGET:3", "OVERLAP:3"]


def test_per_user_rows_keeps_file_order_and_can_shuffle():
    users = np.array([2, 1, 2, 1, 2])
    items = np.array([10, 20, 11, 21, 12])
    assert {u: list(v) for u, v in per_user_rows(users, items).items()} == {1: [20, 21], 2: [10, 11, 12]}
    shuffled = per_user_rows(users, items, shuffle_seed=0)
    assert sorted(shuffled[2]) == [10, 11, 12]


def test_kshot_results_per_k_with_exclusions(tiny_scenario):
    # every synthetic user has exactly 8 target interactions
    result = run_recbole_cdr(model='EMCDR_MF', config_file_list=[tiny_scenario], saved=False,
                             config_dict=fast_config(train_epochs=PHASES, kshot=[0, 3, 7]))
    kshot = result['kshot_results']
    assert list(kshot) == [0, 3, 7]
    n_test = result['split_stats']['n_cold_test']
    assert kshot[0]['n_users'] == n_test and kshot[0]['n_excluded'] == 0
    assert kshot[0]['uauc'] == result['test_result']['uauc']  # K=0 is the plain cold test evaluation
    assert kshot[3]['n_users'] == n_test
    assert kshot[7]['n_users'] == n_test  # K=7 leaves one query interaction per user


def test_kshot_larger_than_every_history_is_an_error(tiny_scenario):
    with pytest.raises(ConfigError, match="The 'kshot' parameter asks for K=10, but no cold test user has more than 8"):
        run_recbole_cdr(model='TargetPop', config_file_list=[tiny_scenario], config_dict=fast_config(kshot=[0, 10]))


def test_kshot_counts_the_cold_test_users_not_the_validation_users(tiny_scenario):
    """A validation user with a long history used to let K pass the check, and K then evaluated 0 test users."""
    content = yaml.safe_load(tiny_scenario.read_text())
    scenario = {k: v for k, v in content['scenario'].items() if k != 'name'}
    config = fast_config()
    prepared = prepare_scenario('tiny', scenario, cache_dir='probe', seed=config['seed'], cold_user_ratio=0.2,
                                cold_valid_fraction=0.5)  # the properties/overall.yaml defaults
    # the split depends on the seed and the overlapping users only: more rows keep this user a validation user
    long_history_user = prepared.cold_valid_users[0]
    target = pd.read_csv(scenario['target_file'])
    seen = set(target.loc[target['user'] == long_history_user, 'item'])
    extra = [item for item in sorted(set(target['item'])) if item not in seen][:20]
    pd.concat([target, pd.DataFrame({'user': long_history_user, 'item': extra})]).to_csv(
        scenario['target_file'], index=False)
    with pytest.raises(ConfigError, match=r"asks for K=12, but no cold test user has more than 8 target"):
        run_recbole_cdr(model='TargetPop', config_file_list=[tiny_scenario], saved=False,
                        config_dict=fast_config(kshot=[0, 12]))


def test_tmcdr_test_time_adaptation_uses_the_support_with_its_own_step(pipeline):
    run = pipeline('TMCDR_MF', train_epochs=PHASES, meta_group_size=8, meta_test_adapt_steps=2, meta_inner_lr=0.5,
                   meta_test_adapt_lr=0.5)
    run.fit()
    model = run.model
    users = model.warm_overlap_users[:4]
    support = [torch.tensor([1, 2, 3])] * 4
    adapted = model.kshot_prior(users, support)  # theta adapted on the support: where fold-in starts
    assert not torch.allclose(adapted, model.map_users(users))
    model.test_adapt_lr = 1e-6  # the test-time step is meta_test_adapt_lr, not meta_inner_lr
    assert torch.allclose(model.kshot_prior(users, support), model.map_users(users), atol=1e-4)
    model.test_adapt_steps = 0
    assert torch.equal(model.kshot_prior(users, support), model.map_users(users))
