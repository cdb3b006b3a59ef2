"""Several inference settings validated within one training: ``inference_grid``.

A key that changes only how cold users are scored, not what is trained (a model's ``inference_keys``, e.g.
SSCDR's ``sscdr_hops``), trains the same model once per value when it is searched as separate trials. With
``inference_grid: {sscdr_hops: [1, 2]}`` the bridge phase trains once, validates every setting after each
validated epoch and early-stops each on its own (own best epoch, own patience); training goes on until the last
setting has stopped. Each setting is validated from the same random state (sampled evaluation draws its
negatives), and tested from the state its own run would have had when it stopped, so each setting's best epoch,
state and results are those of its own run (tests/test_inference_grid.py compares them with separate runs). A
setting whose validation fails stops with its error; the others go on. The best setting on validation is the
run's result; :meth:`InferenceGridMixin.evaluate_inference_grid` tests every setting, for the benchmark to record
each as a trial.
"""

import copy
import itertools
import random
from dataclasses import dataclass, field
from time import time

import numpy as np
import torch
from recbole.utils import early_stopping, set_color


def grid_settings(grid):
    """The settings of an ``inference_grid`` (key -> values), in product order of its keys."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]


def describe(settings):
    return ', '.join(f'{key}={value}' for key, value in settings.items())


def random_state():
    """The random streams a training or a (sampled) evaluation draws from: python, numpy, torch (and CUDA's)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def set_random_state(state):
    python_state, numpy_state, torch_state, cuda = state
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


@dataclass
class InferenceTrial:
    """Early stopping of one inference setting within the shared training."""
    settings: dict
    best_score: float
    cur_step: int = 0
    stopped: bool = False
    best_epoch: int = None
    best_stage: str = None
    best_state: dict = None
    best_result: dict = None
    history: list = field(default_factory=list)
    epochs_run: int = 0
    steps: int = 0
    error: str = None         # its validation failed: its own run would have failed, so it has no result
    final_random_state: tuple = None  # when it stopped: its own run would test from there


class InferenceGridMixin:
    """The trainer's side of ``inference_grid`` (mixed into ColdStartTrainer)."""

    validation_round = None  # during a round of the settings' validations: a dict the trainer may keep results in

    def new_inference_trials(self):
        """One :class:`InferenceTrial` per setting of the config's ``inference_grid`` (none without one)."""
        grid = self.config['inference_grid']
        start = float('-inf') if self.valid_metric_bigger else float('inf')
        return [InferenceTrial(settings, start) for settings in grid_settings(grid)] if grid else []

    def _fit_inference_grid(self, loader, valid_data, verbose, saved, show_progress, callback_fn):
        """RecBole's epoch loop (train, validate, early-stop) with one early stopping per inference setting."""
        self.eval_collector.data_collect(loader)
        if self.config['train_neg_sample_args'].get('dynamic', 'none') != 'none':
            loader.get_model(self.model)
        for trial in self.inference_trials:  # a new stage (TMCDR's meta stage) gets fresh patience, as in fit
            trial.cur_step, trial.stopped, trial.final_random_state = 0, trial.error is not None, None
        for epoch_idx in range(self.start_epoch, self.epochs):
            start = time()
            loss = self._train_epoch(loader, epoch_idx, show_progress=show_progress)
            self.train_loss_dict[epoch_idx] = sum(loss) if isinstance(loss, tuple) else loss
            if verbose:
                self.logger.info(self._generate_train_loss_output(epoch_idx, start, time(), loss))
            self._add_train_loss_to_tensorboard(epoch_idx, loss)
            live = [trial for trial in self.inference_trials if not trial.stopped]
            for trial in live:
                trial.epochs_run, trial.steps = epoch_idx + 1, self.phase_steps
            if (epoch_idx + 1) % self.eval_step:
                continue
            before, after, scores = random_state(), None, []
            self.validation_round = {}  # the settings validate one state: a trainer may share work among them
            try:
                for trial in live:
                    set_random_state(before)  # each setting draws what its own run would draw
                    score = self._validate_inference_trial(trial, epoch_idx, valid_data, verbose, show_progress)
                    if score is not None:  # a failed validation may have drawn part of what a whole one draws
                        after = random_state()
                        scores.append(score)
            finally:
                self.validation_round = None
            if after is not None:
                set_random_state(after)
            for trial in live:
                if trial.stopped and trial.error is None:
                    trial.final_random_state = after
            if callback_fn and scores:
                callback_fn(epoch_idx, max(scores) if self.valid_metric_bigger else min(scores))
            if all(trial.stopped for trial in self.inference_trials):
                break
        for trial in self.inference_trials:  # still running at the last epoch: its own run would end here too
            if trial.final_random_state is None:
                trial.final_random_state = random_state()
        self._choose_inference_trial(saved, verbose)

    def _validate_inference_trial(self, trial, epoch_idx, valid_data, verbose, show_progress):
        label = describe(trial.settings)
        self.model.apply_inference(trial.settings)
        start = time()
        try:
            score, result = self._valid_epoch(valid_data, show_progress=show_progress)
        except Exception as error:  # noqa: BLE001 - e.g. out of memory in one setting's scoring: the others go on
            self._reset_evaluation(valid_data)
            trial.error, trial.stopped = f'{type(error).__name__}: {error}', True
            self.logger.warning(f'{label}: validation failed, the setting stops ({trial.error})')
            return None
        trial.best_score, trial.cur_step, trial.stopped, improved = early_stopping(
            score, trial.best_score, trial.cur_step, max_step=self.stopping_step, bigger=self.valid_metric_bigger)
        trial.history.append({'stage': self.bridge_stage, 'epoch': epoch_idx,
                              'loss': float(self.train_loss_dict.get(epoch_idx, 0.0)), 'valid_score': float(score),
                              'steps': self.phase_steps, **self.epoch_diagnostics})
        if improved:
            trial.best_state = copy.deepcopy(self.model.state_dict())
            trial.best_result, trial.best_epoch, trial.best_stage = result, epoch_idx, self.bridge_stage
        self.tensorboard.add_scalar(f'Vaild_score/{label}', score, epoch_idx)
        if verbose:
            self.logger.info(set_color(f'epoch {epoch_idx} evaluating {label}', 'green')
                             + f' [time: {time() - start:.2f}s, valid_score: {score:f}]')
            if trial.stopped:
                self.logger.info(f'{label}: stopped, best eval result in epoch {trial.best_epoch}')
        return score

    def _reset_evaluation(self, eval_data):
        """After an evaluation stopped by an error: the loader restarts at its first batch (RecBole's loaders keep
        their position) and the collector drops the batches it holds (it would add them to the next evaluation)."""
        eval_data.pr = 0
        for key in ('rec.topk', 'rec.meanrank', 'rec.score', 'rec.items', 'data.label'):  # as get_data_struct drops
            if key in self.eval_collector.data_struct:
                del self.eval_collector.data_struct[key]

    def _choose_inference_trial(self, saved, verbose):
        """The setting with the best validation score (the first of equals) becomes the trainer's result."""
        bigger = self.valid_metric_bigger
        chosen = None
        for trial in self.inference_trials:
            if trial.best_state is not None and trial.error is None and (
                    chosen is None or (trial.best_score > chosen.best_score if bigger
                                       else trial.best_score < chosen.best_score)):
                chosen = trial
        if chosen is None:
            return
        self.chosen_inference_trial = chosen
        self.best_valid_score, self.best_valid_result = chosen.best_score, chosen.best_result
        self.best_state, self.best_epoch, self.best_stage = chosen.best_state, chosen.best_epoch, chosen.best_stage
        self.model.load_state_dict(chosen.best_state)
        self.model.apply_inference(chosen.settings)
        set_random_state(chosen.final_random_state)  # the run's test then draws what the chosen setting's run draws
        if verbose:
            self.logger.info(set_color('inference setting chosen on validation', 'yellow')
                             + f': {describe(chosen.settings)} (epoch {chosen.best_epoch})')
        if saved:
            self._save_checkpoint(chosen.best_epoch, verbose=verbose)

    def evaluate_inference_grid(self, test_data, show_progress=False):
        """Every setting of the grid at its own best state: its settings, validation and test results and training
        summary (or its error). The model ends at the chosen setting."""
        outcomes = []
        after_test = random_state()  # after the run's test of the chosen setting: what comes next draws from here
        for trial in self.inference_trials:
            outcome = {'settings': dict(trial.settings)}
            if trial.best_state is None or trial.error is not None:  # its own run would have no result
                outcome['error'] = trial.error or 'no validation score'
            else:
                self.model.load_state_dict(trial.best_state)
                self.model.apply_inference(trial.settings)
                set_random_state(trial.final_random_state)
                try:
                    test_result = self.evaluate(test_data, load_best_model=False, show_progress=show_progress)
                except Exception as error:  # noqa: BLE001 - this setting fails, not the others; with its validation
                    self._reset_evaluation(test_data)  # score: a search fails the run should it have won there
                    outcome.update(error=f'{type(error).__name__}: {error}',
                                   failed_after_validation={'valid_score': trial.best_score})
                else:
                    outcome.update(best_valid_score=trial.best_score, best_valid_result=trial.best_result,
                                   test_result=test_result, training=self.training_summary(trial))
            outcomes.append(outcome)
        set_random_state(after_test)
        chosen = self.chosen_inference_trial
        if chosen is not None:
            self.model.load_state_dict(chosen.best_state)
            self.model.apply_inference(chosen.settings)
        return outcomes
