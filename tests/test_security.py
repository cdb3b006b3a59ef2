"""No code runs from a planted or user-named pickle, and concurrent runs in one directory keep their own
checkpoints. A "planted" file here is a pickle whose ``__reduce__`` writes a marker file when unpickled."""

import os
import pathlib
import pickle

import pytest
import torch

from recbole_tmcdr import run_recbole_cdr
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.safe_loading import CheckpointError
from recbole_tmcdr.validation import PICKLE_KEYS, ConfigError

from conftest import Pipeline, fast_config

EMCDR = dict(train_epochs=['SOURCE:2', 'TARGET:2', 'OVERLAP:3'], embedding_size=8)


class Planted:
    """Unpickling this object writes ``marker`` (where a real attack would run a shell command)."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.write_text, (self.marker, 'code ran')


def plant(path, marker, with_torch=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if with_torch:
        torch.save({'config': Planted(marker), 'state_dict': {}}, path)
    else:
        with open(path, 'wb') as f:
            pickle.dump(Planted(marker), f)


def test_planted_dataset_and_dataloader_pickles_in_saved_are_never_read(tiny_scenario, tmp_path):
    marker = tmp_path / 'marker'
    config = build_config('EMCDR_MF', config_file_list=[tiny_scenario], config_dict=fast_config(**EMCDR))
    # the toolkit's default names, in saved/ of the working directory (the fixture's tmp_path)
    plant(os.path.join(config['checkpoint_dir'], f"{config['dataset']}-CrossDomainDataset.pth"), marker)
    plant(os.path.join(config['checkpoint_dir'], f"{config['dataset']}-for-EMCDR_MF-dataloader.pth"), marker)
    result = run_recbole_cdr(model='EMCDR_MF', config_file_list=[tiny_scenario], config_dict=fast_config(**EMCDR))
    assert not marker.exists()
    assert 0 <= result['test_result']['ndcg@10'] <= 1


@pytest.mark.parametrize('key', PICKLE_KEYS)
def test_dataset_and_dataloader_pickle_keys_are_refused(key, tiny_scenario, tmp_path):
    marker = tmp_path / 'marker'
    planted = tmp_path / 'planted.pth'
    plant(planted, marker)
    value = str(planted) if key.endswith('_path') else True
    with pytest.raises(ConfigError, match=rf"The '{key}' parameter is not supported .* Remove it"):
        run_recbole_cdr(model='EMCDR_MF', config_file_list=[tiny_scenario],
                        config_dict=fast_config(**EMCDR, **{key: value}))
    assert not marker.exists()


def test_planted_checkpoint_is_refused_by_every_loader(pipeline, tmp_path):
    from recbole_cdr.quick_start import load_data_and_model
    marker = tmp_path / 'marker'
    planted = tmp_path / 'saved' / 'EMCDR_MF-planted.pth'
    plant(planted, marker, with_torch=True)
    run = pipeline('EMCDR_MF', **EMCDR)
    loaders = {
        'evaluate': lambda: run.trainer.evaluate(run.test_data, load_best_model=True, model_file=str(planted)),
        'resume_checkpoint': lambda: run.trainer.resume_checkpoint(str(planted)),
        'load_data_and_model': lambda: load_data_and_model(str(planted)),
    }
    for name, load in loaders.items():
        with pytest.raises(CheckpointError, match='Refusing to load .* re-train'):
            load()
        assert not marker.exists(), name


@pytest.mark.parametrize('module', ['neumf', 'nais', 'ract'])
def test_general_models_pretrained_files_are_read_weights_only(module, tmp_path, monkeypatch):
    # NeuMF's use_pretrain (mf_pretrain_path), NAIS's pretrain_path, RaCT's pre_model_path: torch.load in the model
    import importlib
    marker = tmp_path / 'marker'
    planted = tmp_path / 'pretrained.pth'
    plant(planted, marker, with_torch=True)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # the usual advice when such a load fails
    model_module = importlib.import_module(f'recbole.model.general_recommender.{module}')
    with pytest.raises(CheckpointError, match='Refusing to load'):
        model_module.torch.load(str(planted))
    assert not marker.exists()


def test_checkpoint_holds_tensors_and_plain_values_only(pipeline):
    run = pipeline('EMCDR_MF', **EMCDR)
    run.fit(saved=True)
    checkpoint = torch.load(run.trainer.saved_model_file, weights_only=True)
    assert checkpoint['config']['model'] == 'EMCDR_MF'
    assert checkpoint['config']['settings']['embedding_size'] == 8
    assert set(checkpoint['state_dict']) == set(run.model.state_dict())


def test_runs_started_in_the_same_second_in_one_directory_test_their_own_model(tiny_scenario, monkeypatch):
    # Freeze the clock RecBole names checkpoints by: both trainers are built "in the same second".
    import recbole.trainer.trainer
    import recbole_tmcdr.trainer.cold_start_trainer
    for module in (recbole.trainer.trainer, recbole_tmcdr.trainer.cold_start_trainer):
        monkeypatch.setattr(module, 'get_local_time', lambda: 'Jan-01-2024_00-00-00', raising=False)
    runs = [Pipeline('EMCDR_MF', [tiny_scenario], **EMCDR, seed=seed) for seed in (1, 2)]
    assert runs[0].trainer.saved_model_file != runs[1].trainer.saved_model_file
    for run in runs:
        run.fit(saved=True)
    for run in runs:  # the best state is in memory at the end of fit; the checkpoint must hold the same model
        own = run.trainer.evaluate(run.test_data, load_best_model=False)
        assert run.trainer.evaluate(run.test_data, load_best_model=True) == own
    assert runs[0].trainer.evaluate(runs[0].test_data) != runs[1].trainer.evaluate(runs[1].test_data)


def test_traditional_model_statistics_survive_a_weights_only_checkpoint(tmp_path):
    import numpy as np
    import scipy.sparse
    from recbole_tmcdr.model.recbole_general import statistics_from_tensors, statistics_to_tensors
    statistics = {'pred_mat': scipy.sparse.random(5, 4, density=0.5, format='lil', random_state=0),
                  'similarity': np.asmatrix(np.arange(6.0).reshape(2, 3)), 'counts': torch.arange(3), 'max': None}
    torch.save(statistics_to_tensors(statistics), tmp_path / 'state.pth')
    restored = statistics_from_tensors(torch.load(tmp_path / 'state.pth', weights_only=True))
    assert restored['pred_mat'].format == 'lil' and (restored['pred_mat'] != statistics['pred_mat']).nnz == 0
    assert type(restored['similarity']) is np.matrix
    assert np.array_equal(restored['similarity'], statistics['similarity'])
    assert torch.equal(restored['counts'], statistics['counts']) and restored['max'] is None


def test_load_data_and_model_rebuilds_a_run_from_its_checkpoint(pipeline):
    from recbole_cdr.quick_start import load_data_and_model  # the toolkit's name, pointed at the plugin's
    from recbole_tmcdr.registry import get_trainer
    run = pipeline('EMCDR_MF', **EMCDR)
    run.fit(saved=True)
    expected = run.trainer.evaluate(run.test_data, load_best_model=True)
    config, model, dataset, train_data, valid_data, test_data = load_data_and_model(run.trainer.saved_model_file)
    assert config['model'] == 'EMCDR_MF' and config['embedding_size'] == 8
    trainer = get_trainer(config['MODEL_TYPE'], config['model'])(config, model)
    assert trainer.evaluate(test_data, load_best_model=False) == expected
