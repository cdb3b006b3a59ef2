"""Trained models kept on disk, so that a router reuses a candidate that an identical run has trained.

:func:`recbole_tmcdr.quick_start.run_recbole_cdr` with ``store_trained_models: True`` (off by default: a few MB per
run) stores the model it has trained and evaluated (the best validated state), with its best validation score and
result, in ``<cache_dir>/trained/<model>-<key>.pt``;
:class:`~recbole_tmcdr.trainer.k_router_trainer.KRouterTrainer` stores the candidates it trains there too, and reads
a candidate back instead of training it (``router_reuse_trained``). The key (:func:`trained_model_key`) holds what
determines the trained model: the model, its resolved config without :data:`NOT_TRAINING_KEYS` (with the content of
every file a setting names, e.g. ContentGenre's content file), the training code
(:func:`~recbole_tmcdr.benchmark.inputs.code_sha`, and the files of a model's or trainer's own classes; not the helper
modules these import) and the rows it trained and validated on, with their id space. Files are written atomically,
carry a checksum and hold tensors and plain values only (:mod:`recbole_tmcdr.cache`); a missing, corrupt or
malformed file is a logged miss, a failed write a warning.
"""

import math
import numbers
import os
from logging import getLogger

from recbole.utils import set_color

from recbole_tmcdr.cache import atomic_torch_save, load_checked, remove_dead_writes, stable_key, state_checksum
from recbole_tmcdr.config import default_cache_dir
from recbole_tmcdr.data import file_sha256
from recbole_tmcdr.registry import get_trainer
from recbole_tmcdr.trainer.cold_start_trainer import id_space, interaction_digest

# Keys of the resolved config that cannot change the trained model: where files are (the content of the data is in
# the key instead), what is shown or logged, and the K-shot evaluation that follows training (fold-in,
# model/foldin.py). A router's own keys are left out too (training_config).
NOT_TRAINING_KEYS = frozenset({
    'cache_dir', 'checkpoint_dir', 'data_path', 'raw_data_path', 'store_trained_models',  # locations, storage
    'show_progress', 'state', 'loss_decimal_place', 'gpu_id', 'log_wandb', 'wandb_project',  # display, logging
    'kshot', 'kshot_foldin_steps', 'kshot_foldin_lr', 'kshot_foldin_prior_weight', 'kshot_foldin_search',
})
# A reloaded model's validation metrics (rounded to metric_decimal_place by RecBole, as the stored ones were) must
# equal the stored ones: a guard against state outside the state_dict, not a proof of identity (the key is).
SCORE_TOLERANCE = 1e-9


def with_file_contents(value):
    """Config values that name an existing file carry its content's sha256 (an edited content file, same path, is
    another input), in nested dicts and lists too."""
    if isinstance(value, dict):
        return {key: with_file_contents(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [with_file_contents(item) for item in value]
    if isinstance(value, str) and os.path.isfile(value):
        return {'file': value, 'sha256': file_sha256(value, use_cache=False)}
    return value


def training_config(config):
    """``config.final_config_dict`` without the keys that cannot change the trained model, files with contents."""
    from recbole_tmcdr.model.k_router import KRouter
    # A router passes none of its own keys to its candidates; a single run of the same model may hold them (e.g. a
    # benchmark's overrides), and no model but the router reads them.
    left_out = NOT_TRAINING_KEYS | (KRouter.OWN_KEYS - {'model', 'train_epochs'})
    settings = {key: value for key, value in config.final_config_dict.items() if key not in left_out}
    for domain in ('source_domain', 'target_domain'):  # their data_path: the prepared scenario inside cache_dir
        settings[domain] = {key: value for key, value in settings[domain].items() if key != 'data_path'}
    return with_file_contents(settings)


def trained_model_path(run):
    """Where the model that ``run`` (a :class:`recbole_tmcdr.quick_start.Run`) trains is stored, computed BEFORE it
    trains (a loader may reorder the rows it fingerprints); None for a router (never a candidate, so nothing would
    read it) and when its code cannot be keyed (logged)."""
    from recbole_tmcdr.benchmark.inputs import code_sha, own_sources
    from recbole_tmcdr.model.k_router import KRouter
    if isinstance(run.model, KRouter):
        return None
    model = run.config['model']
    sources = own_sources([type(run.model), get_trainer(run.config['MODEL_TYPE'], model)])
    if sources is None:
        getLogger().info(f'{model}: a class of its model or trainer has no source file; its trained model is neither '
                         'stored nor reused.')
        return None
    key = stable_key({
        'model': model,
        'config': training_config(run.config),
        'code': code_sha(),
        'own_code': [file_sha256(path, use_cache=False) for path in sources],
        'rows': {'source_train': interaction_digest(run.train_data.source_dataset),
                 'target_train': interaction_digest(run.train_data.target_dataset),
                 'valid': interaction_digest(run.valid_data.dataset)},
        'id_space': id_space(run.model),
    })[:20]
    return os.path.join(run.config['cache_dir'] or default_cache_dir(), 'trained', f'{model}-{key}.pt')


def payload_checksum(payload):
    return state_checksum({name: value for name, value in payload.items() if name != 'checksum'})


def store_trained_model(run, path, best_valid_score, best_valid_result):
    """Store the model that ``run`` has trained (its current state) with its best validation score and result at
    ``path`` (:func:`trained_model_path`, computed before training; None: nothing to store). A failed write (full
    disk, read-only cache) is a warning: the run's own result stands."""
    if path is None or best_valid_result is None:
        return
    payload = {'model': run.config['model'], 'state_dict': run.model.state_dict(),
               'best_valid_score': float(best_valid_score),
               'best_valid_result': {str(name): float(value) for name, value in best_valid_result.items()}}
    payload['checksum'] = payload_checksum(payload)
    try:
        remove_dead_writes(os.path.dirname(path))
        atomic_torch_save(payload, path)
    except OSError as error:
        getLogger().warning(f'Could not store the trained model in {path} ({error}); nothing will reuse it.')
        return
    getLogger().info(set_color('Trained model stored', 'blue') + f': {path}')


def load_trained_model(path):
    """The payload stored at ``path`` (``state_dict``, ``best_valid_score``, ``best_valid_result``), or None: none
    stored, a corrupt file or one of another shape (logged)."""
    if path is None:
        return None
    payload = load_checked(path, payload_checksum)
    if payload is None:
        return None
    if not (isinstance(payload.get('state_dict'), dict) and isinstance(payload.get('best_valid_result'), dict)
            and isinstance(payload.get('best_valid_score'), numbers.Real)
            and all(isinstance(v, numbers.Real) for v in payload['best_valid_result'].values())):
        getLogger().warning(f'Ignoring the trained model {path}: not a stored state with its validation result.')
        return None
    return payload


def validation_mismatch(result, stored, valid_metric):
    """Why a reloaded model's validation ``result`` is not the one ``stored`` with it; None when every metric (and
    the best score) agrees."""
    expected = {**stored['best_valid_result'], valid_metric: stored['best_valid_score']}
    for name, value in expected.items():
        got = result.get(name)
        if got is None or not math.isclose(float(got), value, rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE):
            return f'on the cold validation users it scores {name} {got}, the run that stored it {value}'
    return None
