"""The trainer of :class:`~recbole_tmcdr.model.k_router.KRouter`: a :class:`ColdStartTrainer` whose ``fit`` first
trains each candidate with that candidate's own trainer, on the candidate's own loaders, as
:func:`recbole_tmcdr.quick_start.run_recbole_cdr` trains it alone; then chooses its fold-in settings and computes its
K-shot results on the cold VALIDATION users (:func:`~recbole_tmcdr.quick_start.kshot_on_validation`), and routes.

A candidate that an identical run has trained before (:mod:`recbole_tmcdr.trained_models`) is loaded instead of
trained (``router_reuse_trained``), if it scores on the cold validation users what that run recorded; a candidate it
trains is stored there in turn.

The router itself has no phase to train: the inherited ``fit`` then evaluates the routed scorer on the cold
validation users once (its best validation result) and writes the checkpoint, which holds every candidate's weights
and the choice.
"""

import copy

from recbole.utils import set_color

from recbole_tmcdr.registry import get_trainer, register_trainer
from recbole_tmcdr.trained_models import (load_trained_model, store_trained_model, trained_model_path,
                                          validation_mismatch)
from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer


@register_trainer
class KRouterTrainer(ColdStartTrainer):
    """Train (or reuse) the candidates, route per K on the cold validation users, then validate the router."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.candidate_trainers = {}

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        from recbole_tmcdr.quick_start import kshot_on_validation
        router = self.model
        valid_results, foldin, reused = {}, {}, []
        keep = self.config['router_reuse_trained'] or self.config['store_trained_models']
        for name, run in router.runs.items():
            trainer = get_trainer(run.config['MODEL_TYPE'], name)(run.config, run.model)
            path = trained_model_path(run) if keep else None  # keyed before training: loaders may reorder rows
            if self.config['router_reuse_trained'] and self.reuse_trained(name, run, trainer, path):
                reused.append(name)
            else:
                self.logger.info(set_color(f'KRouter candidate {name}', 'yellow') + ': training')
                best_score, best_result = trainer.fit(run.train_data, run.valid_data, verbose=verbose, saved=False,
                                                      show_progress=show_progress)
                if self.config['store_trained_models']:
                    store_trained_model(run, path, best_score, best_result)
            on_validation = kshot_on_validation(trainer, run.valid_data, ks=router.ks)
            valid_results[name] = on_validation['kshot_valid_results']
            if on_validation['kshot_foldin']:
                foldin[name] = on_validation['kshot_foldin']
            self.candidate_trainers[name] = trainer
        router.route(valid_results)
        router.routing.update(foldin=foldin, reused=reused)
        self.logger.info(set_color('KRouter choice per K', 'yellow') + f': {router.choice}')
        return super().fit(train_data, valid_data, verbose=verbose, saved=saved, show_progress=show_progress,
                           callback_fn=callback_fn)

    def reuse_trained(self, name, run, trainer, path):
        """Whether the candidate ``name`` now holds the model an identical run stored at ``path``. Kept only if it
        scores on the cold validation users what that run recorded (a guard against state outside the state_dict);
        otherwise it is back to its untrained state."""
        stored = load_trained_model(path)
        if stored is None:
            return False
        untrained = copy.deepcopy(run.model.state_dict())
        try:
            run.model.load_state_dict(stored['state_dict'])
            result = trainer.evaluate(run.valid_data, load_best_model=False, show_progress=False)
            why = validation_mismatch(result, stored, trainer.valid_metric)
        except Exception as error:  # noqa: BLE001 - a state that does not fit or score is a miss, reported below
            why = f'it does not load into the model ({type(error).__name__}: {error})'
        if why:
            self.logger.warning(f'KRouter candidate {name}: not reusing {path}: {why}; training it.')
            run.model.load_state_dict(untrained)
            return False
        self.logger.info(set_color(f'KRouter candidate {name}', 'yellow') + f': reusing the trained model {path}')
        return True
