"""TMCDR's inner-step diagnostics and the theta' scoring of TMCDRAdapted: known answers against the float64
reference of test_tmcdr, the per-epoch log and warning, the result line's training summary."""

import logging

import pytest
import torch

from test_models import PHASES
from test_tmcdr import META, first_meta_batch, meta_pipeline, reference_phase_loss  # noqa: F401 (fixture)

from recbole_tmcdr.config import plugin_yaml_files
from recbole_tmcdr.model.tmcdr import ScoringParameters


def support_gradients(model, batch):
    weight = model.bridge[0].weight.detach().clone().requires_grad_(True)
    bias = model.bridge[0].bias.detach().clone().requires_grad_(True)
    for g in range(len(batch['support_users'])):
        yield weight, bias, torch.autograd.grad(reference_phase_loss(model, weight, bias, batch, 'support', g),
                                                (weight, bias))


def test_inner_step_ratio_and_adapted_theta_match_the_reference(meta_pipeline):
    model = meta_pipeline.model
    batch = first_meta_batch(meta_pipeline)
    ratios, adapted_w, adapted_b = [], [], []
    for weight, bias, (g_w, g_b) in support_gradients(model, batch):
        step = model.inner_lr * torch.sqrt((g_w ** 2).sum() + (g_b ** 2).sum())
        ratios.append(step / torch.sqrt((weight ** 2).sum() + (bias ** 2).sum()))
        adapted_w.append(weight - model.inner_lr * g_w)
        adapted_b.append(bias - model.inner_lr * g_b)
    assert model.inner_step_ratio(batch) == pytest.approx(float(torch.stack(ratios).mean().detach()), rel=1e-9)
    model.refresh_adapted_bridge(batch)
    assert torch.allclose(model.adapted_bridge[0].weight, torch.stack(adapted_w).mean(0), rtol=1e-9)
    assert torch.allclose(model.adapted_bridge[0].bias, torch.stack(adapted_b).mean(0), rtol=1e-9)
    # theta itself is untouched, and the scoring follows meta_scoring
    users = batch['query_users'][0]
    at_theta = model.map_users(users)
    assert not model.adapted_bridge[0].weight.requires_grad
    model.scoring = ScoringParameters.ADAPTED
    assert not torch.allclose(model.map_users(users), at_theta)
    assert torch.allclose(model.map_users(users, ScoringParameters.THETA), at_theta)


def test_adapted_models_have_their_own_names_and_yaml():
    names = [p.name for p in plugin_yaml_files('TMCDRAdapted_BPR')]
    assert names == ['overall.yaml', 'TMCDR.yaml', 'TMCDRAdapted.yaml', 'TMCDRAdapted_BPR.yaml']
    assert [p.name for p in plugin_yaml_files('TMCDR_BPR')] == ['overall.yaml', 'TMCDR.yaml', 'TMCDR_BPR.yaml']


def test_meta_epochs_are_logged_and_summarised(pipeline, caplog):
    run = pipeline('TMCDRAdapted_MF', **{**META, 'train_epochs': ['SOURCE:2', 'TARGET:2', 'OVERLAP:3'],
                                         'meta_inner_lr': 50.0, 'stopping_step': 10})
    assert run.model.scoring == ScoringParameters.ADAPTED
    with caplog.at_level(logging.INFO):
        run.fit()
    summary = run.trainer.training_summary()
    assert summary['epochs_run'] == 3 and summary['max_epochs'] == 3 and not summary['stopped_on_patience']
    assert summary['best_epoch'] in (0, 1, 2) and summary['steps'] == 3 * summary['history'][0]['steps']
    for entry in summary['history']:
        assert entry['inner_step_ratio'] > 0.05
        assert entry['valid_score'] == pytest.approx(entry['valid_at_adapted'])  # this model scores with theta'
    assert sum("meta epoch: inner step" in r.message for r in caplog.records) == 3
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING and 'inner step moves' in r.message]
    assert len(warnings) <= 1  # at most once per run


def test_inner_step_warning_needs_a_large_step_and_theta_prime_ahead():
    from recbole_tmcdr.trainer.meta_trainer import inner_step_warning
    # the measured cases of docs/tmcdr_defaults/: TMCDR_BPR on ml_genre at lambda 0.1 (warn), TMCDR_MF on Douban
    # at lambda 0.1 (its best setting, theta ahead of theta': no warning), small steps (no warning)
    message = inner_step_warning(0.147, 0.150, 0.405, 0.1, 'mean')
    assert message.count('\n') == 0 and "lower 'meta_inner_lr' (now 0.1" in message and '15%' in message
    assert inner_step_warning(0.122, 0.131, 0.089, 0.1, 'mean') is None
    assert inner_step_warning(0.003, 0.150, 0.405, 0.005, 'mean') is None


def test_plain_tmcdr_scores_at_theta_and_the_best_state_keeps_its_adapted_theta(pipeline):
    run = pipeline('TMCDR_MF', **{**META, 'train_epochs': ['SOURCE:2', 'TARGET:2', 'OVERLAP:2']})
    run.fit()
    history = run.trainer.training_summary()['history']
    assert [h['valid_score'] for h in history] == pytest.approx([h['valid_at_theta'] for h in history])
    assert 'adapted_bridge.0.weight' in run.model.state_dict()
    phases = run.trainer.training_summary()['phases']
    for name in ('SOURCE', 'TARGET'):  # pre-trained here (or reused): then its per-epoch losses are recorded
        assert phases[name]['reused'] or len(phases[name]['losses']) == 2
    assert set(phases) == {'SOURCE', 'TARGET', 'OVERLAP'} and phases['OVERLAP']['seconds'] > 0
    assert isinstance(phases['SOURCE']['reused'], bool) and 'reused' not in phases['OVERLAP']


def test_diagnostics_can_be_switched_off(pipeline):
    run = pipeline('TMCDR_MF', **{**META, 'train_epochs': PHASES, 'meta_diagnostics': False})
    run.fit()
    assert all('inner_step_ratio' not in h for h in run.trainer.training_summary()['history'])


def test_diagnostics_do_not_change_what_is_trained(pipeline):
    settings = {**META, 'train_epochs': ['SOURCE:2', 'TARGET:2', 'OVERLAP:3']}
    # both pre-train: on cached embeddings the meta-gradients differ in the last bits, which training amplifies
    runs = [pipeline('TMCDR_MF', **settings, meta_diagnostics=flag, force_pretrain=True) for flag in (True, False)]
    for run in runs:
        run.fit()
    scores = [[h['valid_score'] for h in run.trainer.training_summary()['history']] for run in runs]
    assert scores[0] == scores[1]
    assert torch.equal(runs[0].model.bridge[0].weight, runs[1].model.bridge[0].weight)


def test_adapted_model_with_a_warm_start(pipeline):
    run = pipeline('TMCDRAdapted_MF', **{**META, 'train_epochs': ['SOURCE:2', 'TARGET:2', 'OVERLAP:2'],
                                         'meta_warm_start_epochs': 2})
    run.fit()  # the warm start trains theta itself, and is validated with theta' = theta
    summary = run.trainer.training_summary()
    assert [h['stage'] for h in summary['history']] == ['warm_start'] * 2 + ['meta'] * 2
    assert summary['best_stage'] in ('warm_start', 'meta') and summary['best_epoch'] is not None
    assert summary['epochs_run'] == 2 and summary['steps'] >= summary['steps_at_best'] > 0


def test_summary_counts_trained_epochs_with_eval_step(pipeline):
    run = pipeline('EMCDR_MF', train_epochs=['SOURCE:2', 'TARGET:2', 'OVERLAP:5'], eval_step=2, stopping_step=10)
    run.fit()
    summary = run.trainer.training_summary()
    assert [h['epoch'] for h in summary['history']] == [1, 3]
    assert summary['epochs_run'] == 5 and not summary['stopped_on_patience']


def test_pretraining_losses_reach_tensorboard(pipeline, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run = pipeline('EMCDR_MF', train_epochs=['SOURCE:2', 'TARGET:2', 'OVERLAP:1'], force_pretrain=True)
    run.fit()
    run.trainer.tensorboard.flush()
    events = EventAccumulator(str(next((tmp_path / 'log_tensorboard').glob('*')))).Reload()
    tags = events.Tags()['scalars']
    assert {'Loss/Pretrain_SOURCE', 'Loss/Pretrain_TARGET'} <= set(tags)
    assert len(events.Scalars('Loss/Pretrain_SOURCE')) == 2
