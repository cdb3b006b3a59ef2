"""Trained models kept on disk, so that a router reuses a candidate that an identical run has trained.

:func:`recbole_tmcdr.quick_start.run_recbole_cdr` with ``store_trained_models: True`` (off by default: a few MB per
run) stores the model it has trained and evaluated (the best validated state), with its best validation score and
result, in ``<cache_dir>/trained/<model>-<key>.pt``;
:class:`~recbole_tmcdr.trainer.k_router_trainer.KRouterTrainer` stores the candidates it trains there too, and reads
a candidate back instead of training it (``router_reuse_trained``). The key (:func:`trained_model_key`) holds what
determines the trained model: the model, its resolved config without :data:`NOT_TRAINING_KEYS`, the training code
(:func:`~recbole_tmcdr.benchmark.spec.code_sha`, and the source of a model of your own) and the rows it trained and
validated on, with their id space. Files are written atomically, carry a checksum and hold tensors and plain values
only (:mod:`recbole_tmcdr.cache`); a missing or corrupt file is a miss.
"""

import math
import os
from logging import getLogger

from recbole.utils import set_color

from recbole_tmcdr.cache import atomic_torch_save, load_checked, remove_dead_writes, stable_key, state_checksum
from recbole_tmcdr.config import default_cache_dir
from recbole_tmcdr.trainer.cold_start_trainer import id_space, interaction_digest

# Keys of the resolved config that cannot change the trained model: where files are (the content of the data is in
# the key instead), what is shown or logged, and the K-shot evaluation that follows training (fold-in,
# model/foldin.py). A router's own keys are left out too (training_config).
NOT_TRAINING_KEYS = frozenset({
    'cache_dir', 'checkpoint_dir', 'data_path', 'raw_data_path', 'store_trained_models',  # locations, storage
    'show_progress', 'state', 'loss_decimal_place', 'gpu_id', 'log_wandb', 'wandb_project',  # display, logging
    'kshot', 'kshot_foldin_steps', 'kshot_foldin_lr', 'kshot_foldin_prior_weight', 'kshot_foldin_search',
})
# A reloaded model's validation metrics must equal the stored ones to this relative tolerance.
SCORE_TOLERANCE = 1e-9


def training_config(config):
    """``config.final_config_dict`` without the keys that cannot change the trained model."""
    from recbole_tmcdr.model.k_router import KRouter
    # A router passes none of its own keys to its candidates; a single run of the same model may hold them (e.g. a
    # benchmark's overrides), and no model but the router reads them.
    left_out = NOT_TRAINING_KEYS | (KRouter.OWN_KEYS - {'model', 'train_epochs'})
    settings = {key: value for key, value in config.final_config_dict.items() if key not in left_out}
    for domain in ('source_domain', 'target_domain'):  # their data_path: the prepared scenario inside cache_dir
        settings[domain] = {key: value for key, value in settings[domain].items() if key != 'data_path'}
    return settings


def trained_model_key(run):
    """Cache key of the model that ``run`` (a :class:`recbole_tmcdr.quick_start.Run`) trains."""
    from recbole_tmcdr.benchmark.spec import code_sha, file_sha, user_model_sources
    model = run.config['model']
    return stable_key({
        'model': model,
        'config': training_config(run.config),
        'code': code_sha(),
        'user_code': [file_sha(path) for path in user_model_sources(model)],
        'rows': {'source_train': interaction_digest(run.train_data.source_dataset),
                 'target_train': interaction_digest(run.train_data.target_dataset),
                 'valid': interaction_digest(run.valid_data.dataset)},
        'id_space': id_space(run.model),
    })[:20]


def trained_model_path(run):
    directory = os.path.join(run.config['cache_dir'] or default_cache_dir(), 'trained')
    return os.path.join(directory, f"{run.config['model']}-{trained_model_key(run)}.pt")


def payload_checksum(payload):
    return state_checksum({name: value for name, value in payload.items() if name != 'checksum'})


def store_trained_model(run, best_valid_score, best_valid_result):
    """Store the model that ``run`` has trained (its current state) with its best validation score and result. A
    router's is not stored: a router is never a candidate, so nothing would read it."""
    from recbole_tmcdr.model.k_router import KRouter
    if not run.config['store_trained_models'] or isinstance(run.model, KRouter) or best_valid_result is None:
        return
    path = trained_model_path(run)
    payload = {'model': run.config['model'], 'state_dict': run.model.state_dict(),
               'best_valid_score': float(best_valid_score),
               'best_valid_result': {str(name): float(value) for name, value in best_valid_result.items()}}
    payload['checksum'] = payload_checksum(payload)
    remove_dead_writes(os.path.dirname(path))
    atomic_torch_save(payload, path)
    getLogger().info(set_color('Trained model stored', 'blue') + f': {path}')


def load_trained_model(run):
    """The stored payload of the model ``run`` trains (``state_dict``, ``best_valid_score``, ``best_valid_result``),
    or None: none stored, or a corrupt file (logged)."""
    return load_checked(trained_model_path(run), payload_checksum)


def validation_mismatch(result, stored, valid_metric):
    """Why a reloaded model's validation ``result`` is not the one ``stored`` with it; None when every metric (and
    the best score) agrees."""
    expected = {**stored['best_valid_result'], valid_metric: stored['best_valid_score']}
    for name, value in expected.items():
        got = result.get(name)
        if got is None or not math.isclose(float(got), value, rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE):
            return f'on the cold validation users it scores {name} {got}, the run that stored it {value}'
    return None
