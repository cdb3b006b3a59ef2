"""Figure 10: a training step of the LightGCN floor, the plugin's propagation against RecBole's.

RecBole's LightGCN multiplies its normalised adjacency matrix (COO) with the embeddings ``n_layers`` times per
step, forward and backward; the plugin builds :class:`~recbole_tmcdr.model.graph_propagation.PropagatedLightGCN`
(the matrix in CSR, layers summed as they are made, the loss's layers computed only at the
rows it reads through the later layers). Both sides are the plugin's adapter with the same
weights, the same target training batches and Adam; one step = zero_grad, ``calculate_loss``, backward, step,
alternated batch by batch, each side's time its minimum. Run on Amazon sport -> cloth at embedding 64 (figure 8c's
scenario, the largest target graph); the quick run on its tiny scenario. A measurement without a target: figure 8c
is the whole run.
"""

import itertools

import torch

from speed.bench_joint import AMAZON, AMAZON_SETTINGS
from speed.common import NO_TARGET, Figure, Pipeline, fmt_times, interleaved

STEPS = 30


def lightgcn_pipelines(ctx):
    """The plugin's LightGCN and RecBole's (built with ``FASTER_MODELS`` emptied), same weights."""
    import recbole_tmcdr.model.recbole_general as recbole_general
    build = (lambda: ctx.setup.pipeline('LightGCN', train_epochs=['TARGET:1'])) if ctx.quick else \
        (lambda: Pipeline('LightGCN', AMAZON, **AMAZON_SETTINGS))
    ours = build()
    saved = recbole_general.FASTER_MODELS
    recbole_general.FASTER_MODELS = {}
    try:
        theirs = build()
    finally:
        recbole_general.FASTER_MODELS = saved
    theirs.model.load_state_dict(ours.model.state_dict())
    return ours, theirs


def run(ctx):
    from recbole_tmcdr.phases import Phase
    ours, theirs = lightgcn_pipelines(ctx)
    for pipeline in (ours, theirs):
        pipeline.enter_phase(Phase.TARGET)
    loader = ours.trainer.training_loader(ours.train_data, Phase.TARGET)
    batches = list(itertools.islice(loader, 4 if ctx.quick else STEPS))

    def step(pipeline):
        """One training step per call, on the batches in turn (both sides see the same sequence)."""
        turns = itertools.cycle(batches)

        def one():
            pipeline.trainer.optimizer.zero_grad()
            pipeline.model.calculate_loss(next(turns)).backward()
            pipeline.trainer.optimizer.step()
        return one

    times = interleaved({'ours': step(ours), 'recbole': step(theirs)}, len(batches) - 1)
    gap = max((a - b).abs().max().item() for a, b in zip(ours.model.parameters(), theirs.model.parameters()))
    ratio = min(times['ours']) / min(times['recbole'])
    matrix = ours.model.recbole_model.norm_adj_matrix
    return [Figure('10', 'LightGCN training step: plugin propagation / RecBole COO (same batches, Adam)', ratio, 'x',
                   NO_TARGET, None,
                   {'seconds (min)': fmt_times(times), 'steps per side': len(batches),
                    'largest parameter difference after the steps': gap,
                    'adjacency': f'{tuple(matrix.shape)}, {matrix.values().numel()} non-zeros',
                    'scenario': 'tiny (--quick)' if ctx.quick else f'{AMAZON}, d={AMAZON_SETTINGS["embedding_size"]}',
                    'threads': torch.get_num_threads()})]
