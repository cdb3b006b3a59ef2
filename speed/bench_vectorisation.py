"""Figure 2: the vmapped meta-batch against a Python loop over its groups.

One meta-batch of 64 groups (``meta_groups_per_batch: 64``) from ``MetaTaskLoader``; each side
computes the meta-loss and its gradient w.r.t. theta (``model.meta_loss(batch, vectorised=...)`` then
``torch.autograd.grad``). The two must agree (allclose on the loss and on every gradient) before they are
timed. The speed-up is a measurement without a target (the former ">= 3x" assumed an overhead-bound loop;
the tasks are large enough that it is not, see README.md); the row passes or fails on the agreement only.
"""

import torch

from speed.common import Figure, best, fmt_times, interleaved

GROUPS = 64


def run(ctx):
    from recbole_tmcdr.phases import Phase
    # The figure is defined at 64 groups per meta-batch (the model default may differ).
    pipe = ctx.tmcdr_pipeline() if ctx.quick else ctx.tmcdr_pipeline(meta_groups_per_batch=GROUPS)
    model, trainer = pipe.model, pipe.trainer
    pipe.enter_phase(Phase.OVERLAP)
    batch = max(trainer.bridge_loader(pipe.train_data), key=lambda b: b['support_users'].shape[0])
    groups = int(batch['support_users'].shape[0])
    params = list(model.meta_parameters().values())

    def loss_and_grads(vectorised):
        loss = model.meta_loss(batch, vectorised=vectorised)
        return loss.detach(), torch.autograd.grad(loss, params)

    (loss_v, grads_v), (loss_l, grads_l) = loss_and_grads(True), loss_and_grads(False)
    scale = float(loss_l.abs()) + 1.0
    equal = bool(torch.allclose(loss_v, loss_l, rtol=1e-4, atol=1e-6 * scale)) and all(
        torch.allclose(gv, gl, rtol=1e-3, atol=1e-5 * (float(gl.abs().max()) + 1e-12))
        for gv, gl in zip(grads_v, grads_l))
    max_grad_diff = max(float((gv - gl).abs().max() / (gl.abs().max() + 1e-12)) for gv, gl in zip(grads_v, grads_l))

    times = interleaved({'vmap': lambda: loss_and_grads(True), 'loop': lambda: loss_and_grads(False)},
                        rounds=ctx.rounds(7))
    t = best(times)
    speedup = t['loop'] / t['vmap']
    details = {'seconds (min over rounds)': fmt_times(times), 'groups in the meta-batch': groups,
               'padded samples per group (support, query)': (int(batch['support_pos'].shape[1]),
                                                              int(batch['query_pos'].shape[1])),
               'loss vmap / loop': (float(loss_v), float(loss_l)),
               'max relative gradient difference': max_grad_diff, 'allclose': equal}
    name = f'vmapped meta-batch speed-up over a Python loop ({groups} groups)'
    return [Figure('2', name + ('' if equal else ' [RESULTS DIFFER]'), speedup, 'x',
                   'no speed target (measured); equal results', equal, details)]
