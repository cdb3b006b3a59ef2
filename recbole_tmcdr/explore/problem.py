"""The simulation's inputs for one (scenario, seed), taken from trained mapping models.

Each model is trained once per (scenario, model, seed, settings) with ``run_recbole_cdr(saved=True)`` and its
checkpoint kept in ``<cache_dir>/explore_models/``, under a key that covers the scenario's split
(``scenario_cache_key``: raw data, split settings, seed), the scenario file, the model's settings and YAML
layers and the plugin's training code (:func:`recbole_tmcdr.benchmark.inputs.code_sha`); later calls load it
with :func:`recbole_tmcdr.quick_start.load_data_and_model`. The base models' pre-training is shared with
every other run through the plugin's embedding cache.

From the loaded models come:

- the arms: the frozen target item embeddings x_i of the target base model (all models must share them);
- the environment: each cold TEST user's held-out target items (the split's test file; these rows reached
  no training phase);
- the priors of the per-user linear policies: f(u^s) of each model for the cold test users, and the mean
  warm user (users with target training rows) for "no transfer". Each is calibrated to the reward scale on
  the cold VALIDATION users: r_ui ~ c + s (u . x_i) by least squares over all their (user, item) pairs,
  giving the prior mean s u, the intercept c and the noise sigma (residual standard deviation);
- popularity: target training interactions per item.
"""

import glob
import os
import tempfile
from dataclasses import dataclass, field
from logging import getLogger
from pathlib import Path
from time import perf_counter

import torch

from recbole_tmcdr.cache import stable_key
from recbole_tmcdr.config import default_cache_dir, plugin_yaml_files
from recbole_tmcdr.explore.policies import DTYPE, LinearPrior
from recbole_tmcdr.explore.simulation import Environment, Problem
from recbole_tmcdr.validation import ConfigError

LINEAR_BASE_MODELS = ('MF', 'BPR', 'ListRankMF')  # scores are u . x: the linear policies' reward model
NO_TRANSFER = 'no_transfer'


@dataclass
class ModelRun:
    """Where one trained model comes from, and what it cost to get."""
    model: str
    checkpoint: str
    trained: bool = False
    seconds: float = 0.0


@dataclass
class ProblemInfo:
    """What the report says about the inputs of one (scenario, seed)."""
    n_users: int
    n_items: int
    n_valid_users: int
    items_per_user_mean: float
    calibration: dict = field(default_factory=dict)   # prior -> {slope, intercept, noise}
    models: list = field(default_factory=list)         # ModelRun as dicts
    seconds: float = 0.0


def model_checkpoint(scenario, model, seed, model_settings, cache_dir=None):
    """Path of the checkpoint of ``model`` on ``scenario`` (a :class:`~recbole_tmcdr.benchmark.spec.Scenario`)
    with ``seed``, training it first if the cache does not hold it."""
    from recbole_tmcdr import run_recbole_cdr
    from recbole_tmcdr.benchmark.inputs import NON_RESULT_KEYS, code_sha, file_sha
    from recbole_tmcdr.quick_start import build_config

    settings = {**model_settings, 'seed': seed}
    config = build_config(model, config_dict=dict(settings), **scenario.run_kwargs())
    if config['base_model'] not in LINEAR_BASE_MODELS:
        raise ConfigError(f"The 'models' parameter of explore lists '{model}', whose base model "
                          f"{config['base_model']} does not score by a dot product: the linear policies need one of "
                          f"{', '.join(LINEAR_BASE_MODELS)}.")
    key = stable_key({
        'split': config['scenario_cache_key'], 'scenario_file': scenario.content_sha, 'model': model,
        'settings': {k: v for k, v in sorted(settings.items()) if k not in NON_RESULT_KEYS},
        'model_yaml': [file_sha(f) for f in plugin_yaml_files(model)], 'code': code_sha(),
    })
    directory = Path(cache_dir or config['cache_dir'] or default_cache_dir()) / 'explore_models' / scenario.label
    path = directory / f'{model}-seed{seed}-{key[:16]}.pth'
    run = ModelRun(model=model, checkpoint=str(path))
    if path.is_file():
        return run
    directory.mkdir(parents=True, exist_ok=True)
    start = perf_counter()
    with tempfile.TemporaryDirectory(dir=directory, prefix='.train-') as checkpoint_dir:
        run_recbole_cdr(model=model, config_dict={**settings, 'checkpoint_dir': checkpoint_dir}, saved=True,
                        **scenario.run_kwargs())
        written = glob.glob(os.path.join(checkpoint_dir, '*.pth'))
        if len(written) != 1:
            raise RuntimeError(f'Training {model} wrote {len(written)} checkpoints to {checkpoint_dir}, expected one.')
        os.replace(written[0], path)
    run.trained, run.seconds = True, perf_counter() - start
    return run


def user_items(dataset, n_items):
    """(users (U,), held-out items (U, N) bool) of a target split file, items as arm indices (id - 1)."""
    users_col = torch.as_tensor(dataset.inter_feat[dataset.uid_field]).long()
    items_col = torch.as_tensor(dataset.inter_feat[dataset.iid_field]).long()
    users, rows = torch.unique(users_col, return_inverse=True)
    relevant = torch.zeros(len(users), n_items, dtype=torch.bool)
    relevant[rows, items_col - 1] = True
    return users, relevant


@dataclass
class LoadedModel:
    """What one checkpoint contributes (everything but f(u^s) is the same for models sharing a split and
    pre-training)."""
    items: torch.Tensor
    test_users: torch.Tensor
    test_relevant: torch.Tensor
    valid_users: torch.Tensor
    valid_relevant: torch.Tensor
    popularity: torch.Tensor
    mean_warm_user: torch.Tensor
    f_test: torch.Tensor
    f_valid: torch.Tensor


@torch.no_grad()
def read_checkpoint(path):
    from recbole_tmcdr.quick_start import load_data_and_model
    config, model, _, train_data, valid_data, test_data = load_data_and_model(path)
    model.eval()
    items = model.target_item_table()[1:].to(DTYPE)  # id 0 is padding
    n_items = len(items)
    test_users, test_relevant = user_items(test_data.dataset, n_items)
    valid_users, valid_relevant = user_items(valid_data.dataset, n_items)
    target_train = train_data.dataset.target_domain_dataset.inter_feat
    train_items = torch.as_tensor(target_train[model.TARGET_ITEM_ID]).long()
    warm_users = torch.as_tensor(target_train[model.TARGET_USER_ID]).long().unique()
    leaked = set(test_users.tolist()) & set(warm_users.tolist())
    if leaked:  # the split guarantees this; the simulation's rewards would otherwise be seen in training
        raise RuntimeError(f'{len(leaked)} cold test users have target training rows in {path}.')
    warm = model.base_model.constrain(model.target_user_embedding(warm_users)).to(DTYPE)
    return LoadedModel(
        items=items, test_users=test_users, test_relevant=test_relevant, valid_users=valid_users,
        valid_relevant=valid_relevant,
        popularity=torch.bincount(train_items, minlength=n_items + 1)[1:].to(DTYPE),
        mean_warm_user=warm.mean(0),
        f_test=model.map_users(test_users).to(DTYPE), f_valid=model.map_users(valid_users).to(DTYPE))


def calibrate(valid_vectors, items, valid_relevant):
    """Least squares r ~ c + s z over every (validation user, item) pair, z = u . x: (slope, intercept, noise)."""
    z = (valid_vectors @ items.T).reshape(-1)
    r = valid_relevant.to(DTYPE).reshape(-1)
    z_mean, r_mean = z.mean(), r.mean()
    variance = ((z - z_mean) ** 2).mean()
    slope = float(((z - z_mean) * (r - r_mean)).mean() / variance) if variance > 0 else 0.0
    intercept = float(r_mean - slope * z_mean)
    noise = float((r - intercept - slope * z).pow(2).mean().sqrt())
    if slope <= 0:  # no information: the linear policies then start from theta = 0, not from a reversed ranking
        getLogger().warning(f'A prior scores the cold validation users no better than chance (least-squares slope '
                            f'{slope:.3g}); its calibrated slope is set to 0.')
        slope = 0.0
        intercept = float(r_mean)
        noise = float((r - intercept).pow(2).mean().sqrt())
    return slope, intercept, noise


def same_split_and_items(first, other, model):
    for name in ('items', 'test_users', 'test_relevant', 'valid_users', 'popularity', 'mean_warm_user'):
        if not torch.equal(getattr(first, name), getattr(other, name)):
            raise ConfigError(f"The 'models' parameter of explore lists '{model}', whose {name.replace('_', ' ')} "
                              'differ from the first model\'s: every model must share the split and the pre-trained '
                              'target embeddings (same base model and pre-training settings in model_settings).')


def build_problem(scenario, seed, settings, cache_dir=None):
    """The :class:`~recbole_tmcdr.explore.simulation.Problem` of the cold test users, its twin on the cold
    validation users (where the policies' settings are chosen) and the :class:`ProblemInfo` of one (scenario,
    seed)."""
    start = perf_counter()
    runs = [model_checkpoint(scenario, model, seed, settings['model_settings'], cache_dir)
            for model in settings['models']]
    loaded = {run.model: read_checkpoint(run.checkpoint) for run in runs}
    first = loaded[runs[0].model]
    for model, other in loaded.items():
        same_split_and_items(first, other, model)
    sources = {model: (m.f_valid, m.f_test) for model, m in loaded.items()}
    if settings['no_transfer_prior']:
        mean = first.mean_warm_user.unsqueeze(0)
        sources = {NO_TRANSFER: (mean.expand(len(first.valid_users), -1), mean.expand(len(first.test_users), -1)),
                   **sources}
    test_priors, valid_priors, calibration = {}, {}, {}
    for name, (valid_vectors, test_vectors) in sources.items():
        slope, intercept, noise = calibrate(valid_vectors, first.items, first.valid_relevant)
        test_priors[name] = LinearPrior(test_vectors, slope, intercept, noise, name)
        valid_priors[name] = LinearPrior(valid_vectors, slope, intercept, noise, name)
        calibration[name] = {'slope': slope, 'intercept': intercept, 'noise': noise}
    test = Problem(Environment(first.test_relevant), first.items, first.popularity, test_priors)
    valid = Problem(Environment(first.valid_relevant), first.items, first.popularity, valid_priors)
    info = ProblemInfo(n_users=len(first.test_users), n_items=len(first.items), n_valid_users=len(first.valid_users),
                       items_per_user_mean=float(first.test_relevant.sum(1).double().mean()), calibration=calibration,
                       models=[vars(run) for run in runs], seconds=perf_counter() - start)
    return test, valid, info
