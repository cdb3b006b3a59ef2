"""Summary of the TMCDR defaults sweep (benchmarks/specs/tmcdr_defaults_sweep.yaml) on the cold VALIDATION users.

    python benchmarks/tmcdr_defaults.py OUT_DIR [OUT_DIR ...]    # benchmark directories of the sweep's specs

Per scenario and base model: EMCDR_X's validation score, and TMCDR_X's for each inner step size (mean ± sd over
seeds), the best validated meta epoch, the outer steps run and the inner-step ratio ||lambda grad L_a|| / ||theta||
at the best epoch (read from the runs' logs). A setting is "below" where TMCDR_X's mean is below EMCDR_X's by
more than the larger of the two seed spreads (sd). Test users are never read.
"""

import glob
import json
import os
import re
import sys

import pandas as pd

RATIO_LINE = re.compile(r"meta epoch: inner step .* = ([0-9.]+); \S+ at theta ([0-9.]+), at theta' ([0-9.]+)")


def trial_logs(run_dir):
    """Per trial (in run order): the (ratio, valid at theta, valid at theta') of each meta epoch. One process logs
    all of a run's trials; each trial's meta stage starts with a 'Phase OVERLAP' line."""
    trials = []
    for path in sorted(glob.glob(os.path.join(run_dir, 'log', '*', '*.log'))):
        with open(path, encoding='utf-8') as f:
            for line in f:
                if 'Phase OVERLAP' in line:
                    trials.append([])
                elif (match := RATIO_LINE.search(line)) and trials:
                    trials[-1].append(tuple(float(g) for g in match.groups()))
    return trials


def setting_label(params):
    inner = {k: v for k, v in params.items() if k != 'learning_rate'}
    if set(inner) == {'meta_loss_reduction', 'meta_inner_lr'}:
        return f"{inner['meta_loss_reduction']}, λ={inner['meta_inner_lr']}"
    return ', '.join(f'{k}={v}' for k, v in inner.items()) or 'default'


def sweep_rows(out_dirs):
    rows, records = [], []
    for out_dir in out_dirs:
        with open(os.path.join(out_dir, 'results.jsonl'), encoding='utf-8') as f:
            records += [json.loads(line) for line in f if line.strip()]
    for record in records:
        family, base = record['model'].split('_', 1)
        logs = trial_logs(record['run_dir']) if family == 'TMCDR' else []
        for index, trial in enumerate(record['trials']):
            epochs = logs[index] if index < len(logs) else []
            best = trial.get('best_epoch')
            at_best = epochs[best] if best is not None and best < len(epochs) else (None, None, None)
            rows.append({'scenario': record['scenario'], 'base': base, 'family': family, 'seed': record['seed'],
                         'setting': setting_label(trial['params']),
                         'valid': trial['valid_score'], 'best_epoch': best, 'steps': trial.get('steps'),
                         'ratio': at_best[0], 'valid_at_adapted': at_best[2]})
    return pd.DataFrame(rows)


def summary(frame):
    stats = frame.groupby(['scenario', 'base', 'family', 'setting'], sort=False).agg(
        valid=('valid', 'mean'), sd=('valid', 'std'), seeds=('valid', 'size'), best_epoch=('best_epoch', 'mean'),
        steps=('steps', 'mean'), ratio=('ratio', 'mean'), adapted=('valid_at_adapted', 'mean')).reset_index()
    emcdr = stats[stats.family == 'EMCDR'].set_index(['scenario', 'base'])
    tmcdr = stats[stats.family == 'TMCDR'].copy()
    reference = emcdr.loc[list(zip(tmcdr.scenario, tmcdr.base))]
    tmcdr['emcdr'] = reference['valid'].to_numpy()
    tmcdr['emcdr_sd'] = reference['sd'].to_numpy()
    tmcdr['emcdr_seeds'] = reference['seeds'].to_numpy()
    # one seed has no spread to compare with: never marked
    tmcdr['below'] = ((tmcdr.valid < tmcdr.emcdr - tmcdr[['sd', 'emcdr_sd']].max(axis=1))
                      & (tmcdr.seeds >= 2) & (tmcdr.emcdr_seeds >= 2))
    return tmcdr


def markdown(tmcdr):
    tmcdr = tmcdr.fillna({'sd': 0.0, 'emcdr_sd': 0.0})  # one seed: no spread (marked n=1)
    def cell(row):
        text = (f'{row.valid:.4f} ± {row.sd:.4f} (epoch {row.best_epoch:.0f}, {row.steps:.0f} steps, '
                f'ratio {row.ratio:.3f})' if pd.notna(row.ratio) else f'{row.valid:.4f} ± {row.sd:.4f}')
        text += f' n={row.seeds}' if row.seeds < 3 else ''
        return ('**below** ' if row.below else '') + text
    table = tmcdr.assign(cell=tmcdr.apply(cell, axis=1),
                         EMCDR=tmcdr.apply(lambda r: f'{r.emcdr:.4f} ± {r.emcdr_sd:.4f}'
                                           + (f' n={r.emcdr_seeds}' if r.emcdr_seeds < 3 else ''), axis=1))
    wide = table.pivot_table(index=['scenario', 'base', 'EMCDR'], columns='setting', values='cell',
                             aggfunc='first', sort=False).reset_index().fillna('not run')
    verdict = tmcdr.groupby('setting', sort=False).agg(below=('below', 'sum'), pairs=('below', 'size'),
                                                      valid=('valid', 'mean')).reset_index()
    return (wide.to_markdown(index=False) + '\n\nPer setting: the number of (scenario, base model) pairs where '
            'TMCDR_X is more than its seed spread below EMCDR_X on validation, and the mean validation score.\n\n'
            + verdict.to_markdown(index=False, floatfmt='.4f'))


if __name__ == '__main__':
    print(markdown(summary(sweep_rows(sys.argv[1:] or ['runs/tmcdr_defaults_sweep']))))
