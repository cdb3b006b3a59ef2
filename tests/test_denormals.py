"""The trainers' optimizers zero their moments that decayed into float32's denormal range: dense Adam's moments of
rows that stopped receiving gradient stay denormal and slow every later step; zeroed, they change no parameter."""

import torch

from recbole_tmcdr.trainer.denormals import SWEEP_STEPS, sweep_denormals, zero_denormal_state

from conftest import fast_config

TINY = torch.finfo(torch.float32).tiny


def adam_after_steps(sweep, steps=14 * SWEEP_STEPS):
    """A table whose rows 2.. stop receiving gradient after one step: their first moment decays (x0.9 per step)
    into the denormal range after ~750 steps, and stays there (0.9 x the smallest denormal rounds back to it)."""
    table = torch.nn.Parameter(torch.linspace(-1, 1, 64 * 8).reshape(64, 8))
    optimizer = torch.optim.Adam([table], lr=0.01, fused=True)
    if sweep:
        sweep_denormals(optimizer)
    gradient = torch.full_like(table, 1e-3)
    for step in range(steps):
        table.grad = gradient if step == 0 else torch.where(torch.arange(64).unsqueeze(1) < 2, gradient, 0.0)
        optimizer.step()
    moment = optimizer.state[table]['exp_avg'][2:]
    return table.detach().clone(), int(((moment != 0) & (moment.abs() < TINY)).sum())


def test_zeroing_denormal_moments_changes_no_parameter():
    kept, denormal_kept = adam_after_steps(sweep=False)
    swept, denormal_swept = adam_after_steps(sweep=True)
    assert denormal_kept > 0  # without the sweep the idle rows' moments stay denormal
    assert denormal_swept == 0  # the last step was a sweep's
    assert torch.equal(kept, swept)


def test_every_trainer_optimizer_sweeps(pipeline):
    run = pipeline('EMCDR_MF', **fast_config())
    table = next(run.model.parameters())
    optimizer = run.trainer._build_optimizer(params=[table])
    table.grad = torch.zeros_like(table)
    optimizer.step()
    optimizer.state[table]['exp_avg'].fill_(1e-40)
    for _ in range(SWEEP_STEPS):
        table.grad = torch.zeros_like(table)
        optimizer.step()
    assert not optimizer.state[table]['exp_avg'].any()


def test_half_precision_state_is_left_alone():
    moments = torch.full((4,), 1e-5, dtype=torch.float16)  # below float16's smallest normal number, yet ordinary
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(4))], lr=0.1)
    optimizer.state[optimizer.param_groups[0]['params'][0]] = {'momentum_buffer': moments}
    sweep_denormals(optimizer, every=1)
    zero_denormal_state(optimizer)
    assert moments.eq(torch.tensor(1e-5, dtype=torch.float16)).all()
