"""Figure 1: cost of one TMCDR meta epoch against one plain epoch of the same f_theta.

Both sides iterate the SAME meta-batches of ``MetaTaskLoader`` (warm overlapping users, every target
positive with its sampled negatives) through the trainer's own ``_train_epoch`` (zero_grad, loss,
backward, fused Adam step):

- meta (second order): ``model.meta_loss`` = vmapped inner step on U_a, loss of the adapted theta' on U_b,
  gradient through the inner step;
- meta (first order): the same with ``meta_first_order`` (FOMAML);
- plain: ``model.task_loss(theta)`` of each group on its support and query samples concatenated, vmapped
  over the groups and reduced over them exactly like the meta-loss: the same f_theta, the same base loss,
  the same samples and the same code path, without the inner loop. (For information the details also give
  ``plain_flattened_info``: all samples of a meta-batch as ONE task, no vmap.)

Data building (one pass of the loader, i.e. grouping, padding and negative sampling) is timed separately,
so each ratio is reported without and with it.
"""

import torch

from speed.common import Figure, best, fmt_times, interleaved

SO_LIMIT, FO_LIMIT = 4.0, 2.5


def concatenated(support, query):
    """Support and query of each group as one set of samples (query user indices shifted past U_a)."""
    n_support_users = support[0].shape[1]
    return (torch.cat([support[0], query[0]], 1), torch.cat([support[1], query[1] + n_support_users], 1),
            *(torch.cat([s, q], 1) for s, q in zip(support[2:], query[2:])))


def plain_loss(model):
    """The reference: ``task_loss(theta)`` of every group on its support + query samples, vmapped over the
    groups like the meta-loss, summed (or averaged) over groups like the meta-loss; no inner step."""
    from torch.func import vmap
    from recbole_tmcdr.model.tmcdr import QUERY, SUPPORT, LossReduction

    def loss(interaction):
        tasks = concatenated(model.task_inputs(interaction, SUPPORT), model.task_inputs(interaction, QUERY))
        per_task = vmap(model.task_loss, in_dims=(None, 0, 0, 0, 0), chunk_size=model.vmap_chunk_size)(model.meta_parameters(), *tasks)
        return per_task.sum() if model.reduction == LossReduction.SUM else per_task.mean()
    return loss


def flattened_plain_loss(model):
    """For information: ``task_loss(theta)`` ONCE on all samples of the meta-batch (all groups as one task,
    no vmap)."""
    from recbole_tmcdr.model.tmcdr import QUERY, SUPPORT

    def loss(interaction):
        users, sample_user, items, mask = concatenated(model.task_inputs(interaction, SUPPORT),
                                                          model.task_inputs(interaction, QUERY))
        n, n_users = users.shape[:2]
        sample_user = sample_user + n_users * torch.arange(n, device=users.device).unsqueeze(1)
        return model.task_loss(model.meta_parameters(), users.flatten(0, 1), sample_user.flatten(),
                               items.flatten(0, 1), mask.flatten())
    return loss


def run(ctx):
    from recbole_tmcdr.phases import Phase
    pipe = ctx.tmcdr_pipeline()
    model, trainer = pipe.model, pipe.trainer
    pipe.enter_phase(Phase.OVERLAP)
    loader = trainer.bridge_loader(pipe.train_data)
    batches = list(loader)
    plain, plain_flat = plain_loss(model), flattened_plain_loss(model)
    first_order_default = model.first_order

    def meta_epoch(first_order):
        def epoch():
            model.first_order = first_order
            try:
                trainer._train_epoch(batches, 0)
            finally:
                model.first_order = first_order_default
        return epoch

    times = interleaved({
        'loader': lambda: list(loader),
        'plain': lambda: trainer._train_epoch(batches, 0, loss_func=plain),
        'plain_flattened_info': lambda: trainer._train_epoch(batches, 0, loss_func=plain_flat),
        'meta_second_order': meta_epoch(False),
        'meta_first_order': meta_epoch(True),
    }, rounds=ctx.rounds(5))
    t = best(times)
    details = {'seconds (min over rounds)': fmt_times(times), 'meta-batches per epoch': len(batches),
               'warm users': int(len(model.warm_overlap_users)),
               'samples per epoch (support+query, real)': int(sum(
                   float(b['support_mask'].sum() + b['query_mask'].sum()) for b in batches)),
               'groups per meta-batch': int(batches[0]['support_users'].shape[0]),
               'inner steps': model.inner_steps, 'loss reduction': model.reduction.value}
    rows = []
    for keys, name, order, limit in ((('1a', '1b'), 'meta_second_order', 'second-order', SO_LIMIT),
                                     (('1c', '1d'), 'meta_first_order', 'first-order', FO_LIMIT)):
        compute = t[name] / t['plain']
        with_loader = (t[name] + t['loader']) / (t['plain'] + t['loader'])
        rows.append(Figure(keys[0], f'{order} meta epoch / plain epoch, compute only', compute, 'x',
                           f'<= {limit}x', compute <= limit, details))
        rows.append(Figure(keys[1], f'{order} meta epoch / plain epoch, incl. loader (both sides)', with_loader,
                           'x', f'<= {limit}x', with_loader <= limit, details))
    return rows
