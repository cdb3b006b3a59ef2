"""Figure 6: time per meta epoch, per pre-training epoch and per evaluation, and meta-stage memory, against size.

Synthetic scenarios (every user in both domains, ~20 target and ~10 source positives per user, power-law
item popularity over ~5k items per domain). Each size runs in its own process (``--child``), which builds
the pipeline (model defaults, with ``embedding_updates: row_sparse``: a dense Adam step touches every row, so
a dense epoch grows with rows x table size, see figures 3 / 3b), then times, in the order of a run:
TARGET pre-training epochs (``_train_epoch`` on the trainer's TripletLoader); whole meta epochs over ALL warm
users (``_train_epoch`` on ``bridge_loader``: loader + compute; the embeddings need not be pre-trained), with
the peak RSS reset (``/proc/self/clear_refs``) before them; the full-ranking evaluation of the cold test users
(``trainer.evaluate``: every target item, RecBole's metrics). Each time is the minimum over its repetitions.
The parent fits log(time) ~ slope * log(size): meta epochs against warm users (target <= 1.1); pre-training
epochs against target training rows, and evaluation against cold test users at a fixed ~5k items (both
measurements without a target: an evaluation ranks every item for each user, so where the items grow with
the users, as in figure 9, it grows with their product).

    python speed/bench_scaling.py --child --users 4000 --workdir /tmp/x   # one size, JSON on stdout
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speed.common import NO_TARGET, Figure, child_env, last_json_line, python, run_measured  # noqa: E402

SLOPE_LIMIT = 1.1
MEMORY_GROWTH_LIMIT = 2.0  # meta-stage RSS growth from the smallest to the largest size (users grow 64x)
FULL_SIZES = (1000, 4000, 16000, 64000)
QUICK_SIZES = (120, 360)


def child(users, workdir, epochs, quick):
    from speed.common import Pipeline, proc_status_kb, reset_peak_rss, set_threads, write_scenario
    set_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    import recbole_tmcdr  # noqa: F401  (compat fixes first)
    import torch
    from recbole_tmcdr.phases import Phase

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    items = 150 if quick else 5000
    start = time.perf_counter()
    scenario = write_scenario(workdir, f'scale{users}', n_users=users, n_items=items,
                              target_per_user=20, source_per_user=10, seed=users)
    overrides = {'cache_dir': str(workdir / 'cache'), 'embedding_updates': 'row_sparse'}
    if quick:
        overrides.update(embedding_size=16, meta_group_size=4, meta_groups_per_batch=8)
    pipe = Pipeline('TMCDR_MF', None, [str(scenario)], **overrides)
    build_s = time.perf_counter() - start
    pipe.enter_phase(Phase.TARGET)
    pretrain_loader = pipe.trainer.training_loader(pipe.train_data, Phase.TARGET)
    pretrain_s = seconds(lambda: pipe.trainer._train_epoch(pretrain_loader, 0), epochs)
    pipe.enter_phase(Phase.OVERLAP)
    loader = pipe.trainer.bridge_loader(pipe.train_data)
    import gc
    gc.collect()
    rss_before = proc_status_kb('VmRSS')
    reset_ok = reset_peak_rss()
    epoch_s = seconds(lambda: pipe.trainer._train_epoch(loader, 0), epochs)
    peak = proc_status_kb('VmHWM')
    eval_s = seconds(lambda: pipe.trainer.evaluate(pipe.test_data, load_best_model=False), epochs)
    target_rows = len(pipe.train_data.target_dataset.inter_feat)
    print(json.dumps({
        'users': users, 'warm_users': int(len(pipe.model.warm_overlap_users)), 'target_train_rows': target_rows,
        'cold_test_users': len(pipe.test_data.uid_list), 'items': int(pipe.model.target_num_items),
        'meta_batches': len(loader), 'pretrain_batches': len(pretrain_loader), 'epochs': epochs,
        'epoch_s': min(epoch_s), 'all_epoch_s': [round(x, 3) for x in epoch_s], 'build_s': round(build_s, 2),
        'pretrain_epoch_s': min(pretrain_s), 'all_pretrain_epoch_s': [round(x, 3) for x in pretrain_s],
        'eval_s': min(eval_s), 'all_eval_s': [round(x, 3) for x in eval_s],
        'rss_before_meta_mb': rss_before / 1024, 'peak_rss_meta_mb': peak / 1024,
        'meta_extra_mb': (peak - rss_before) / 1024 if reset_ok else None, 'peak_reset': reset_ok,
        'threads': torch.get_num_threads()}))


def seconds(fn, repeats):
    """Wall seconds of each of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def slope(xs, ys):
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def run(ctx):
    sizes = QUICK_SIZES if ctx.quick else FULL_SIZES
    results = []
    for users in sizes:
        # The minimum over epochs, and at least 2 at every size: a first epoch is a warm-up (allocator,
        # caches) that costs up to 2.6x a later one, and timing it at the large sizes only biased the slope.
        epochs = 2 if ctx.quick else (3 if users <= 4000 else 2)
        workdir = ctx.workdir / f'scaling_{users}'
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [python(), str(Path(__file__).resolve()), '--child', '--users', str(users), '--workdir', str(workdir),
               '--epochs', str(epochs)] + (['--quick'] if ctx.quick else [])
        code, wall, memory = run_measured(cmd, workdir / 'child.log', env=child_env(ctx.threads))
        out = (workdir / 'child.log').read_text()
        result = last_json_line(out)
        if code != 0 or result is None:
            raise RuntimeError(f'scaling child for {users} users failed (exit {code}):\n{out[-3000:]}')
        result['process_peak_rss_mb'] = memory['max_process_mb']  # whole child, data building included
        result['process_wall_s'] = round(wall, 1)
        results.append(result)
    warm = [r['warm_users'] for r in results]
    epoch = [r['epoch_s'] for r in results]
    fitted = slope(warm, epoch)
    extra = [r['meta_extra_mb'] for r in results]
    table = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
              if k not in ('items', 'epochs', 'peak_reset', 'threads')} for r in results]
    details = {'per size': table}
    rows = [Figure('6a', f'meta epoch time vs warm users {warm[0]}..{warm[-1]}: log-log slope', fitted, '',
                   f'<= {SLOPE_LIMIT}', fitted <= SLOPE_LIMIT, details)]
    if all(e is not None for e in extra):
        growth = max(extra[-1], 1.0) / max(extra[0], 1.0)
        rows.append(Figure('6b', f'meta-stage peak RSS over pre-meta RSS: {extra[0]:.0f} MB -> {extra[-1]:.0f} MB '
                                 f'(smallest -> largest size; value = largest / smallest)', growth, 'x',
                           f'<= {MEMORY_GROWTH_LIMIT}x (bounded by the meta-batch)', growth <= MEMORY_GROWTH_LIMIT,
                           details))
    for key, what, size, seconds_key in (
            ('6c', 'pre-training epoch (TARGET, row_sparse) vs target training rows', 'target_train_rows',
             'pretrain_epoch_s'),
            ('6d', f"full-ranking evaluation of the cold test users ({results[-1]['items']} items) vs cold test users",
             'cold_test_users', 'eval_s')):
        xs = [r[size] for r in results]
        rows.append(Figure(key, f'{what} {xs[0]}..{xs[-1]}: log-log slope',
                           slope(xs, [r[seconds_key] for r in results]), '', NO_TARGET, None, details))
    return rows


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--child', action='store_true')
    parser.add_argument('--users', type=int, required=True)
    parser.add_argument('--workdir', required=True)
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config also parses the command line
    child(args.users, args.workdir, args.epochs, args.quick)
