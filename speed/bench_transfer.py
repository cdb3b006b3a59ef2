"""Figure 3: one pre-training (transfer-stage) epoch of our base model against RecBole's own BPR epoch.

Ours: EMCDR_MF in its TARGET phase, ``trainer._train_epoch`` on the batches the trainer pre-trains on
(``trainer.training_loader``: the plugin's TripletLoader) with the phase's optimizer (fused Adam over the
target user/item tables). RecBole: ``BPR`` with its own ``Trainer._train_epoch`` on a single-domain dataset
of the same target training rows, same batch size, embedding size and negatives per positive (see
recbole_reference.py). Both epochs include their data loader's negative sampling.
"""

from speed.common import Figure, best, fmt_times, interleaved

LIMIT = 1.2


def run(ctx):
    from recbole_tmcdr.phases import Phase
    pipe = ctx.emcdr_pipeline()
    pipe.enter_phase(Phase.TARGET)
    ref = ctx.recbole_bpr(pipe.config)
    loader = pipe.trainer.training_loader(pipe.train_data, Phase.TARGET)
    ours_rows = len(pipe.train_data.target_dataset.inter_feat)
    ref_rows = len(ref.train_data.dataset.inter_feat)

    times = interleaved({
        'ours_EMCDR_MF_TARGET': lambda: pipe.trainer._train_epoch(loader, 0),
        'recbole_BPR': lambda: ref.trainer._train_epoch(ref.train_data, 0),
    }, rounds=ctx.rounds(5))
    t = best(times)
    ratio = t['ours_EMCDR_MF_TARGET'] / t['recbole_BPR']
    details = {'seconds (min over rounds)': fmt_times(times), 'training rows (ours, RecBole)': (ours_rows, ref_rows),
               'batches per epoch (ours, RecBole)': (len(loader), len(ref.train_data)),
               'negatives per positive': pipe.model.neg_per_pos,
               'embedding tables (ours users x items, RecBole users x items)': (
                   (pipe.model.target_user_embedding.num_embeddings, pipe.model.target_item_embedding.num_embeddings),
                   (ref.model.n_users, ref.model.n_items)),
               'batch size': pipe.config['train_batch_size']}
    return [Figure('3', 'transfer-stage epoch (EMCDR_MF TARGET) / RecBole BPR epoch', ratio, 'x', f'<= {LIMIT}x',
                   ratio <= LIMIT, details)]
