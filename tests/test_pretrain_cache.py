"""The pre-training cache key: every setting that shapes a pre-trained base model is in it."""

import contextlib

import pytest
from recbole.utils import init_seed
from recbole_cdr.config import CDRConfig
from recbole_cdr.data import create_dataset, data_preparation

from conftest import fast_config
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.registry import get_model, get_trainer
from recbole_tmcdr.trainer.cold_start_trainer import PRETRAIN_KEY_FIELDS, ColdStartTrainer

PHASES = ["SOURCE:3", "TARGET:3", "OVERLAP:3"]

# For each key of PRETRAIN_KEY_FIELDS: settings that change it (the base run is EMCDR_MF with fast_config()).
CHANGED_SETTINGS = {
    'seed': {'seed': 8},
    'base_model': {'base_model': 'BPR'},
    'embedding_size': {'embedding_size': 8},
    'embedding_reg_weight': {'embedding_reg_weight': 0.1},
    'cml_margin': {'cml_margin': 0.25},
    'pretrain_users': {'pretrain_users': 'overlap'},
    'learner': {'learner': 'sgd'},
    'pretrain_learning_rate': {'pretrain_learning_rate': 0.05},
    'weight_decay': {'weight_decay': 0.5},
    'clip_grad_norm': {'clip_grad_norm': {'max_norm': 1.0}},
    'embedding_updates': {'embedding_updates': 'row_sparse'},
    'train_batch_size': {'train_batch_size': 64},
    'train_neg_sample_args': {'neg_sampling': {'uniform': 2}},
    'pretrain_stopping_tol': {'pretrain_stopping_tol': 0.1},
    'pretrain_stopping_step': {'pretrain_stopping_step': 2},
}
# Settings outside the declared keys that also shape a pre-training: its epochs and its place in train_epochs
# (each phase is seeded with seed + its index).
OTHER_CHANGES = {
    'phase epochs': {'train_epochs': ["SOURCE:4", "TARGET:4", "OVERLAP:3"]},
}
# (The phase order is in the key too, but start-up validation now requires each model's own order.)

# Keys the pre-training reads (through RecBole too) that need not be in the cache key, and why.
NOT_IN_KEY = {
    # the data: the key hashes the training rows and the id space instead
    'dataset', 'source_domain', 'target_domain', 'source_split', 'eval_args', 'NEG_PREFIX',
    # fixed by the model class: every pre-training model is pairwise and has the same loss (also in the key)
    'MODEL_INPUT_TYPE', 'MODEL_TYPE', 'model',
    # derived: train_neg_sample_args (in the key) is computed from it
    'neg_sampling',
    # the phase schedule: the key holds the phase, its index and its epochs
    'train_modes', 'epoch_num', 'epochs',
    # evaluation, the bridge phases' early stopping and learning rate (never during a pre-training)
    'eval_batch_size', 'eval_neg_sample_args', 'eval_type', 'metrics', 'topk', 'valid_metric', 'valid_metric_bigger',
    'metric_decimal_place', 'loss_decimal_place', 'repeatable', 'eval_step', 'stopping_step', 'learning_rate',
    'overlap_batch_size',
    # where things are written, and whether the cache is read at all
    'cache_dir', 'checkpoint_dir', 'save_dataloaders', 'dataloaders_save_path', 'force_pretrain',
    # the same computation elsewhere: only float rounding differs (and cuDNN determinism)
    'device', 'reproducibility',
    # the bridge of each model, built after the base-model tables are initialised
    'mapping_layers', 'mapping_activation', 'mapping_batch_size', 'meta_inner_lr', 'meta_inner_steps',
    'meta_first_order', 'meta_test_adapt_steps', 'meta_scoring', 'meta_vmap_chunk_size', 'meta_loss_reduction', 'cst_reg_weight',
    'sscdr_hops', 'sscdr_unsup_weight', 'ptupcdr_objective', 'ptupcdr_history_sampling', 'ptupcdr_max_history',
    'ptupcdr_meta_dim',
    # K-shot scoring of cold users (fold-in, TMCDR's test-time steps): read when the model is built, used after training
    'kshot_foldin_steps', 'kshot_foldin_lr', 'kshot_foldin_prior_weight', 'meta_test_adapt_lr',
}


def build(scenario, model='EMCDR_MF', **settings):
    """Config, data loaders, model and trainer, as run_recbole_cdr builds them (nothing is trained)."""
    config = build_config(model, config_file_list=[scenario], config_dict=fast_config(**{'train_epochs': PHASES,
                                                                                         **settings}))
    init_seed(config['seed'], config['reproducibility'])
    train_data, valid_data, _ = data_preparation(config, create_dataset(config))
    init_seed(config['seed'], config['reproducibility'])
    recommender = get_model(model)(config, train_data.dataset)
    return get_trainer(config['MODEL_TYPE'], model)(config, recommender), train_data


def pretrain_keys(scenario, **settings):
    trainer, train_data = build(scenario, **settings)
    keys = {}
    for phase_idx, mode in enumerate(trainer.train_modes):
        phase = Phase(mode)
        if trainer.is_pretraining(phase):
            trainer._reinit(phase_idx)
            keys[phase] = trainer.pretrain_key(phase, phase_idx, train_data)
    return keys


def test_every_declared_key_has_a_change_to_test():
    assert set(CHANGED_SETTINGS) == set(PRETRAIN_KEY_FIELDS)


@pytest.mark.parametrize('name', list(PRETRAIN_KEY_FIELDS) + list(OTHER_CHANGES))
def test_changing_a_pretraining_setting_changes_the_cache_key(tiny_scenario, name):
    base = pretrain_keys(tiny_scenario)
    changed = pretrain_keys(tiny_scenario, **{**CHANGED_SETTINGS, **OTHER_CHANGES}[name])
    assert set(base) == set(changed) == {Phase.SOURCE, Phase.TARGET}
    for phase in base:
        assert base[phase] != changed[phase], f'changing {name} keeps the {phase.value} pre-training cache key'


def test_the_same_settings_give_the_same_key(tiny_scenario):
    assert pretrain_keys(tiny_scenario) == pretrain_keys(tiny_scenario)


def test_other_code_gives_another_key(tiny_scenario, monkeypatch):
    # a worktree of another commit sharing the cache must not reuse embeddings its code did not train
    from recbole_tmcdr.benchmark import inputs
    base = pretrain_keys(tiny_scenario)
    monkeypatch.setitem(inputs._CODE_SHA, 'sha', 'another-version')
    changed = pretrain_keys(tiny_scenario)
    assert all(base[phase] != changed[phase] for phase in base)


def cache_files(tmp_path):
    directory = tmp_path / 'cache' / 'pretrained'
    return sorted(directory.glob('*.pt')) if directory.exists() else []


def fit(trainer, train_data):
    trainer.fit(train_data, None, saved=False, verbose=False)


def test_a_run_with_another_weight_decay_retrains_instead_of_reusing(tiny_scenario, tmp_path):
    fit(*build(tiny_scenario, weight_decay=0.5, train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:0"]))
    assert len(cache_files(tmp_path)) == 2
    trainer, train_data = build(tiny_scenario, weight_decay=0.0, train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:0"])
    fit(trainer, train_data)
    assert len(cache_files(tmp_path)) == 4


class ConfigReads:
    """Records the keys read from any CDRConfig while recording (and not paused)."""

    def __init__(self, monkeypatch):
        self.keys, self.recording = set(), False
        read = CDRConfig.__getitem__

        def recorded_read(config, key):
            if self.recording:
                self.keys.add(key)
            return read(config, key)

        monkeypatch.setattr(CDRConfig, '__getitem__', recorded_read)
        key_of = ColdStartTrainer.pretrain_key

        def unrecorded_key(trainer, *args):  # the key reads every declared key itself: not evidence
            with self.paused():
                return key_of(trainer, *args)

        monkeypatch.setattr(ColdStartTrainer, 'pretrain_key', unrecorded_key)

    @contextlib.contextmanager
    def paused(self):
        before, self.recording = self.recording, False
        try:
            yield
        finally:
            self.recording = before


# Models that share the cached pre-training, with train_epochs that train their pre-training phases only.
@pytest.mark.parametrize('model, phases', [
    ('EMCDR_CML', ["SOURCE:2", "TARGET:2", "OVERLAP:0"]), ('TMCDR_MF', ["SOURCE:2", "TARGET:2", "OVERLAP:0"]),
    ('CST', ["SOURCE:2", "TARGET:0"]), ('SSCDR', ["SOURCE:2", "TARGET:2", "OVERLAP:0"]),
    ('PTUPCDR', ["SOURCE:2", "TARGET:2", "OVERLAP:0"]),
])
def test_the_cache_key_covers_every_key_the_pretraining_reads(tiny_scenario, monkeypatch, model, phases):
    """Records the config reads of the loaders, the model, the trainer and a pre-training (RecBole's reads
    included): each is either in the cache key or listed in NOT_IN_KEY with its reason."""
    config = build_config(model, config_file_list=[tiny_scenario], config_dict=fast_config(train_epochs=phases))
    dataset = create_dataset(config)  # every key it reads shapes the rows, which the key hashes
    reads = ConfigReads(monkeypatch)
    reads.recording = True
    train_data, _, _ = data_preparation(config, dataset)
    init_seed(config['seed'], config['reproducibility'])
    trainer = get_trainer(config['MODEL_TYPE'], model)(config, get_model(model)(config, train_data.dataset))
    trained = [Phase(mode) for mode, epochs in zip(trainer.train_modes, trainer.train_epochs) if int(epochs) > 0]
    assert trained and all(trainer.is_pretraining(phase) for phase in trained)
    fit(trainer, train_data)
    reads.recording = False
    unexplained = reads.keys - set(PRETRAIN_KEY_FIELDS) - NOT_IN_KEY
    assert not unexplained, (f'The pre-training reads {sorted(unexplained)}: add them to PRETRAIN_KEY_FIELDS '
                             '(cold_start_trainer.py) or, if they cannot change its result, to NOT_IN_KEY here.')
