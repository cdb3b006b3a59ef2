"""Figure 3: one pre-training (transfer-stage) epoch of our base model against RecBole's own BPR epoch.

Ours: EMCDR_MF in its TARGET phase, ``trainer._train_epoch`` on the batches the trainer pre-trains on
(``trainer.training_loader``: the plugin's TripletLoader) with the phase's optimizer (fused Adam over the
target user/item tables). RecBole: ``BPR`` with its own ``Trainer._train_epoch`` on a single-domain dataset
of the same target training rows, same batch size, embedding size and negatives per positive (see
recbole_reference.py). Both epochs include their data loader's negative sampling. Target (issue 22): at most
half of RecBole's epoch. Figure 3b is the same epoch with ``embedding_updates: row_sparse`` (the optional lazy
Adam over the rows a batch looks up), a measurement without a target.
"""

from speed.common import NO_TARGET, Figure, best, fmt_times, interleaved

LIMIT = 0.5


def run(ctx):
    from recbole_tmcdr.phases import Phase
    pipe = ctx.emcdr_pipeline()
    sparse = ctx.emcdr_pipeline(embedding_updates='row_sparse')
    for p in (pipe, sparse):
        p.enter_phase(Phase.TARGET)
    ref = ctx.recbole_bpr(pipe.config)
    loader = pipe.trainer.training_loader(pipe.train_data, Phase.TARGET)
    sparse_loader = sparse.trainer.training_loader(sparse.train_data, Phase.TARGET)
    ours_rows = len(pipe.train_data.target_dataset.inter_feat)
    ref_rows = len(ref.train_data.dataset.inter_feat)

    times = interleaved({
        'ours_EMCDR_MF_TARGET': lambda: pipe.trainer._train_epoch(loader, 0),
        'recbole_BPR': lambda: ref.trainer._train_epoch(ref.train_data, 0),
        'ours_row_sparse': lambda: sparse.trainer._train_epoch(sparse_loader, 0),
    }, rounds=ctx.rounds(5))
    t = best(times)
    ratio = t['ours_EMCDR_MF_TARGET'] / t['recbole_BPR']
    sparse_ratio = t['ours_row_sparse'] / t['recbole_BPR']
    details = {'seconds (min over rounds)': fmt_times(times), 'training rows (ours, RecBole)': (ours_rows, ref_rows),
               'batches per epoch (ours, RecBole)': (len(loader), len(ref.train_data)),
               'negatives per positive': pipe.model.neg_per_pos,
               'embedding tables (ours users x items, RecBole users x items)': (
                   (pipe.model.target_user_embedding.num_embeddings, pipe.model.target_item_embedding.num_embeddings),
                   (ref.model.n_users, ref.model.n_items)),
               'batch size': pipe.config['train_batch_size']}
    return [Figure('3', 'transfer-stage epoch (EMCDR_MF TARGET) / RecBole BPR epoch', ratio, 'x', f'<= {LIMIT}x',
                   ratio <= LIMIT, details),
            Figure('3b', 'the same with embedding_updates: row_sparse / RecBole BPR epoch', sparse_ratio, 'x', NO_TARGET,
                   None, details)]
