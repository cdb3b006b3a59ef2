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
        for name, run in router.runs.items():
            trainer = get_trainer(run.config['MODEL_TYPE'], name)(run.config, run.model)
            if self.config['router_reuse_trained'] and self.reuse_trained(name, run, trainer):
                reused.append(name)
            else:
                self.logger.info(set_color(f'KRouter candidate {name}', 'yellow') + ': training')
                best_score, best_result = trainer.fit(run.train_data, run.valid_data, verbose=verbose, saved=False,
                                                      show_progress=show_progress)
                store_trained_model(run, best_score, best_result)
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

    def reuse_trained(self, name, run, trainer):
        """Whether the candidate ``name`` now holds the model an identical run stored. Kept only if it scores on the
        cold validation users exactly what that run recorded (state outside its state_dict would not); otherwise it
        is back to its untrained state."""
        stored = load_trained_model(run)
        if stored is None:
            return False
        path, untrained = trained_model_path(run), copy.deepcopy(run.model.state_dict())
        try:
            run.model.load_state_dict(stored['state_dict'])
        except RuntimeError as error:  # missing, unexpected or misshapen entries
            why = f'its state does not fit the model ({error})'
        else:
            result = trainer.evaluate(run.valid_data, load_best_model=False, show_progress=False)
            why = validation_mismatch(result, stored, trainer.valid_metric)
        if why:
            self.logger.warning(f'KRouter candidate {name}: not reusing {path}: {why}; training it.')
            run.model.load_state_dict(untrained)
            return False
        self.logger.info(set_color(f'KRouter candidate {name}', 'yellow') + f': reusing the trained model {path}')
        return True
