"""The trainer of :class:`~recbole_tmcdr.model.k_router.KRouter`: a :class:`ColdStartTrainer` whose ``fit`` first
trains each candidate with that candidate's own trainer, on the candidate's own loaders, as
:func:`recbole_tmcdr.quick_start.run_recbole_cdr` trains it alone; then chooses its fold-in settings and computes its
K-shot results on the cold VALIDATION users (:func:`~recbole_tmcdr.quick_start.kshot_on_validation`), and routes.

The router itself has no phase to train: the inherited ``fit`` then evaluates the routed scorer on the cold
validation users once (its best validation result) and writes the checkpoint, which holds every candidate's weights
and the choice.
"""

from recbole.utils import set_color

from recbole_tmcdr.registry import get_trainer, register_trainer
from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer


@register_trainer
class KRouterTrainer(ColdStartTrainer):
    """Train the candidates, route per K on the cold validation users, then validate the router."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.candidate_trainers = {}

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        from recbole_tmcdr.quick_start import kshot_on_validation
        router = self.model
        valid_results, foldin = {}, {}
        for name, run in router.runs.items():
            self.logger.info(set_color(f'KRouter candidate {name}', 'yellow') + ': training')
            trainer = get_trainer(run.config['MODEL_TYPE'], name)(run.config, run.model)
            trainer.fit(run.train_data, run.valid_data, verbose=verbose, saved=False, show_progress=show_progress)
            on_validation = kshot_on_validation(trainer, run.valid_data, ks=router.ks)
            valid_results[name] = on_validation['kshot_valid_results']
            if on_validation['kshot_foldin']:
                foldin[name] = on_validation['kshot_foldin']
            self.candidate_trainers[name] = trainer
        router.route(valid_results)
        router.routing['foldin'] = foldin
        self.logger.info(set_color('KRouter choice per K', 'yellow') + f': {router.choice}')
        return super().fit(train_data, valid_data, verbose=verbose, saved=saved, show_progress=show_progress,
                           callback_fn=callback_fn)
