"""``run_recbole_cdr`` with a ``dataset`` argument: the toolkit's entry point, plus the scenario by name.

It runs the same steps as ``recbole_cdr.quick_start.run_recbole_cdr`` (config, data, model, trainer,
fit, evaluate) and returns the same dict, with additions: ``split_stats`` (the cold split's counts); when ``kshot``
is set (e.g. ``[0, 1, 3, 5, 10]``), ``kshot_results`` and ``kshot_valid_results``: metrics per K on the cold test and
the cold validation users, and ``kshot_foldin``: the fold-in settings chosen per K on validation
(``kshot_foldin_search``); for a router (:class:`recbole_tmcdr.model.k_router.KRouter`), ``routing``: what it
chose per K. With ``store_trained_models: True`` the trained model is stored in ``cache_dir/trained/`` for a router
to reuse (:mod:`recbole_tmcdr.trained_models`). :func:`prepare_run` builds a run's config, data and model, as this
function and the router (for each of its candidates) need them.
``load_data_and_model`` rebuilds a run from one of its checkpoints (it also replaces recbole-cdr's).
"""

import contextlib
from dataclasses import dataclass
from logging import getLogger

from recbole.utils import dict2str, init_logger, init_seed, set_color
from recbole_cdr.config import CDRConfig
from recbole_cdr.data import data_preparation

from recbole_tmcdr.config import dataset_config_file
from recbole_tmcdr.kshot import choose_foldin, evaluate_kshot
from recbole_tmcdr.registry import get_model, get_trainer
from recbole_tmcdr.safe_loading import CheckpointError, create_dataset, load_weights_only
from recbole_tmcdr.trained_models import store_trained_model, trained_model_path


def build_config(model, dataset=None, config_file_list=None, config_dict=None):
    files = ([dataset_config_file(dataset)] if dataset else []) + [str(f) for f in (config_file_list or [])]
    return CDRConfig(model=model, config_file_list=files, config_dict=config_dict)


def describe_dataset(dataset, split_stats):
    """recbole-cdr's dataset summary, with the overlap counts it would print off by one (it counts the padding id
    as one overlapping user and one overlapping item) and the cold split of the overlapping users."""
    overlap = [f'Num of overlapped user: {dataset.num_overlap_user - 1}',
               f'Num of overlapped item: {dataset.num_overlap_item - 1}']
    if split_stats:
        overlap[0] += (f" (warm {split_stats['n_warm_overlap']}; cold, no target rows in training: "
                       f"{split_stats['n_cold_valid']} validation + {split_stats['n_cold_test']} test)")
    return '\n'.join([f'Source domain: {dataset.source_domain_dataset}',
                      f'Target domain: {dataset.target_domain_dataset}', *overlap])


@dataclass
class Run:
    """What one run trains and evaluates: its config, dataset, loaders and (untrained) model."""
    config: CDRConfig
    dataset: object
    train_data: object
    valid_data: object
    test_data: object
    model: object


def prepare_run(model, dataset=None, config_file_list=None, config_dict=None, log=True):
    """Config, data (the cold split's loaders) and model of a run, built as :func:`run_recbole_cdr` builds them:
    seeded before the data and again before the model. ``log``: set up RecBole's logger and log the config, the
    data and the model (a router's candidates are built inside its run, whose logger is already set up)."""
    config = build_config(model, dataset, config_file_list, config_dict)
    init_seed(config['seed'], config['reproducibility'])
    logger = getLogger()
    if log:
        init_logger(config)
        logger.info(config)
    cdr_dataset = create_dataset(config)
    if log:
        logger.info(describe_dataset(cdr_dataset, config['scenario_stats']))
    train_data, valid_data, test_data = data_preparation(config, cdr_dataset)
    init_seed(config['seed'], config['reproducibility'])
    recommender = get_model(config['model'])(config, train_data.dataset).to(config['device'])
    if log:
        logger.info(recommender)
    return Run(config, cdr_dataset, train_data, valid_data, test_data, recommender)


def kshot_on_validation(trainer, valid_data, ks=None):
    """After training: the fold-in settings chosen per K on the cold validation users (``kshot_foldin_search``;
    None without a search) and the K-shot results there, as ``{'kshot_foldin', 'kshot_valid_results'}``; at the
    run's ``kshot`` unless ``ks`` is given."""
    ks = ks or trainer.config['kshot']
    return {'kshot_foldin': choose_foldin(trainer, valid_data, ks, trainer.config['kshot_foldin_search']),
            'kshot_valid_results': evaluate_kshot(trainer, valid_data, ks=ks)}


@contextlib.contextmanager
def on_test_users(trainer, best_valid_score):
    """Marks an error of the test users' evaluation with what validation scored (``error.after_validation``; of
    the chosen setting where an inference grid was validated): a search then fails the run if that trial won on
    validation (:mod:`recbole_tmcdr.benchmark.worker`), rather than choose another trial on what the test users
    did."""
    try:
        yield
    except Exception as error:
        # what was evaluated: the chosen setting of an inference grid (the others' own runs would test them alone)
        chosen = getattr(trainer, 'chosen_inference_trial', None)
        grid = [] if chosen is None else [{'settings': dict(chosen.settings), 'valid_score': chosen.best_score}]
        with contextlib.suppress(Exception):  # an exception that takes no attribute stays a plain failure
            error.after_validation = {'valid_score': best_valid_score,
                                      'bigger': trainer.config['valid_metric_bigger'], 'grid': grid}
        raise


def run_recbole_cdr(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True):
    r"""Train ``model`` on the scenario ``dataset`` (a name in ``dataset_configs/``) and evaluate it on the
    cold validation and cold test users.

    Args:
        model (str): a registered model name (``python -m recbole_tmcdr --help`` lists them).
        dataset (str, optional): a scenario name; ``None`` if a config file already holds a ``scenario``.
        config_file_list (list, optional): YAML files, applied after the scenario file.
        config_dict (dict, optional): parameters, highest priority after the command line.
        saved (bool): save the best checkpoint (RecBole's ``saved/``) and test with it.
    """
    run = prepare_run(model, dataset, config_file_list, config_dict)
    config, logger = run.config, getLogger()
    trainer = get_trainer(config['MODEL_TYPE'], config['model'])(config, run.model)
    stored_path = trained_model_path(run) if config['store_trained_models'] else None  # keyed before training

    best_valid_score, best_valid_result = trainer.fit(
        run.train_data, run.valid_data, saved=saved, show_progress=config['show_progress'])
    with on_test_users(trainer, best_valid_score):
        test_result = trainer.evaluate(run.test_data, load_best_model=saved, show_progress=config['show_progress'])
    extra = {}
    if getattr(trainer, 'inference_trials', None):  # every setting of inference_grid, tested at its own best state
        with on_test_users(trainer, best_valid_score):
            extra['inference_grid'] = trainer.evaluate_inference_grid(run.test_data,
                                                                      show_progress=config['show_progress'])
    store_trained_model(run, stored_path, best_valid_score, best_valid_result)  # the state just tested

    logger.info(set_color('best valid ', 'yellow') + f': {dict2str(best_valid_result)}')
    logger.info(set_color('test result', 'yellow') + f': {dict2str(test_result)}')
    if config['kshot']:
        # fold-in settings per K and a router's choice are made on the cold validation users, never the test users
        extra.update(kshot_on_validation(trainer, run.valid_data))
        with on_test_users(trainer, best_valid_score):
            extra['kshot_results'] = evaluate_kshot(trainer, run.test_data, ks=config['kshot'])
        for k, metrics in extra['kshot_results'].items():
            logger.info(set_color(f'K-shot K={k}', 'yellow') + f': {dict2str(metrics)}')
    if hasattr(run.model, 'routing_summary'):
        extra['routing'] = run.model.routing_summary()
    return {
        'best_valid_score': best_valid_score,
        'valid_score_bigger': config['valid_metric_bigger'],
        'best_valid_result': best_valid_result,
        'test_result': test_result,
        'split_stats': config['scenario_stats'],
        'training': trainer.training_summary() if hasattr(trainer, 'training_summary') else None,
        **extra,
    }


def load_data_and_model(model_file):
    r"""Config, model (with the checkpoint's weights), dataset and train / valid / test loaders of a checkpoint
    written by a plugin trainer, as recbole-cdr's ``load_data_and_model`` returns them. The checkpoint records
    the model name and the user's settings (not a pickled ``Config``); the config and data are rebuilt from them.
    """
    checkpoint = load_weights_only(model_file, map_location='cpu')
    recorded = checkpoint.get('config') if isinstance(checkpoint, dict) else None
    if not isinstance(recorded, dict) or not {'model', 'settings'} <= set(recorded):
        raise CheckpointError(f'{model_file} was not written by recbole-tmcdr (it records no model name and '
                              'settings), so its run cannot be rebuilt. Re-train to write one.')
    run = prepare_run(recorded['model'], config_dict=recorded['settings'])
    run.model.load_state_dict(checkpoint['state_dict'])
    run.model.load_other_parameter(checkpoint.get('other_parameter'))
    return run.config, run.model, run.dataset, run.train_data, run.valid_data, run.test_data
