"""Figure 6: time per meta epoch and meta-stage memory against the number of overlapping users.

Synthetic scenarios (every user in both domains, ~20 target and ~10 source positives per user, power-law
item popularity over ~5k items per domain). Each size runs in its own process (``--child``), which builds
the pipeline (random embeddings: the meta stage does not care whether they were pre-trained), resets its
peak RSS (``/proc/self/clear_refs``), then runs whole meta epochs over ALL warm users through the trainer
(``_train_epoch`` on ``bridge_loader``: loader + compute). It reports the minimum epoch time, its RSS
before the meta stage and its peak RSS during it. The parent fits log(time) ~ slope * log(warm users).

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

from speed.common import Figure, child_env, last_json_line, python, run_measured  # noqa: E402

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
    overrides = {'cache_dir': str(workdir / 'cache')}
    if quick:
        overrides.update(embedding_size=16, meta_group_size=4, meta_groups_per_batch=8)
    pipe = Pipeline('TMCDR_MF', None, [str(scenario)], **overrides)
    build_s = time.perf_counter() - start
    pipe.enter_phase(Phase.OVERLAP)
    loader = pipe.trainer.bridge_loader(pipe.train_data)
    import gc
    gc.collect()
    rss_before = proc_status_kb('VmRSS')
    reset_ok = reset_peak_rss()
    epoch_s = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        pipe.trainer._train_epoch(loader, epoch)
        epoch_s.append(time.perf_counter() - t0)
    peak = proc_status_kb('VmHWM')
    target_rows = len(pipe.train_data.target_dataset.inter_feat)
    print(json.dumps({
        'users': users, 'warm_users': int(len(pipe.model.warm_overlap_users)), 'target_train_rows': target_rows,
        'items': int(pipe.model.target_num_items), 'meta_batches': len(loader), 'epochs': epochs,
        'epoch_s': min(epoch_s), 'all_epoch_s': [round(x, 3) for x in epoch_s], 'build_s': round(build_s, 2),
        'rss_before_meta_mb': rss_before / 1024, 'peak_rss_meta_mb': peak / 1024,
        'meta_extra_mb': (peak - rss_before) / 1024 if reset_ok else None, 'peak_reset': reset_ok,
        'threads': torch.get_num_threads()}))


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
              if k in ('users', 'warm_users', 'target_train_rows', 'meta_batches', 'epoch_s', 'all_epoch_s',
                       'rss_before_meta_mb', 'peak_rss_meta_mb', 'meta_extra_mb', 'process_peak_rss_mb',
                       'build_s')} for r in results]
    details = {'per size': table}
    rows = [Figure('6a', f'meta epoch time vs warm users {warm[0]}..{warm[-1]}: log-log slope', fitted, '',
                   f'<= {SLOPE_LIMIT}', fitted <= SLOPE_LIMIT, details)]
    if all(e is not None for e in extra):
        growth = max(extra[-1], 1.0) / max(extra[0], 1.0)
        rows.append(Figure('6b', f'meta-stage peak RSS over pre-meta RSS: {extra[0]:.0f} MB -> {extra[-1]:.0f} MB '
                                 f'(smallest -> largest size; value = largest / smallest)', growth, 'x',
                           f'<= {MEMORY_GROWTH_LIMIT}x (bounded by the meta-batch)', growth <= MEMORY_GROWTH_LIMIT,
                           details))
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
