"""Figures of a benchmark report: the paired differences of the compared pairs, the paper's Figure 1, cold to warm
(K-shot), and the bridge stage's training curves."""

import math
import warnings

import numpy as np

from recbole_tmcdr.benchmark.aggregate import (
    BASE_MODELS, COMPARED_PAIRS, METRICS, is_target_only, training_curves, variant_of,
)
from recbole_tmcdr.benchmark.stats import paired_test


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        warnings.warn('matplotlib is not installed: no figure (pip install matplotlib).', stacklevel=3)
        return None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path, title, dpi=120, rect=None):
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def figure1_pairs(agg):
    """[(X, baseline model, TMCDR model)] of the base models with at least one of the pair in the results."""
    present = set(agg.models)
    pairs = []
    for base in BASE_MODELS:
        tmcdr = f'TMCDR_{base}'
        baseline = 'SSCDR' if base == 'CML' and 'SSCDR' in present else f'EMCDR_{base}'
        if tmcdr in present or baseline in present:
            pairs.append((base, baseline, tmcdr))
    return pairs


def _zoomed_ylim(ax, lows, highs):
    if not lows:
        return
    low, high = min(lows), max(highs)
    span = max(high - low, 0.02)
    ax.set_ylim(max(0.0, low - 0.6 * span), min(1.0, high + 0.3 * span) if high <= 1 else high + 0.3 * span)


def plot_figure1(agg, path, metrics=METRICS):
    """A row of panels per compared pair (EMCDR_X vs TMCDR_X, SSCDR vs TMCDR_CML), a column per metric, the
    scenarios side by side in each panel: 1000 px wide whatever the number of pairs."""
    pairs = figure1_pairs(agg)
    plt = _pyplot()
    if not pairs or plt is None:
        return None
    fig, axes = plt.subplots(len(pairs), len(metrics), figsize=(10, 0.8 + 2.6 * len(pairs)), squeeze=False)
    width = 0.2
    x = np.arange(len(agg.scenarios))
    for row, (base, baseline, tmcdr) in enumerate(pairs):
        for col, (name, key) in enumerate(metrics):
            ax = axes[row][col]
            lows, highs = [], []
            for offset, model, color in ((-width / 2, baseline, '#8c8c8c'), (width / 2, tmcdr, '#d62728')):
                summaries = [agg.summary(s, model, key) for s in agg.scenarios]
                means = [s.mean if s else np.nan for s in summaries]
                errors = [(s.half_width or 0.0) if s else 0.0 for s in summaries]
                # points, not bars: a bar's height would count from the axis' zoomed bottom
                ax.errorbar(x + offset, means, yerr=errors, fmt='o', capsize=3, label=model, color=color)
                lows += [s.low for s in summaries if s]
                highs += [s.high for s in summaries if s]
            _zoomed_ylim(ax, lows, highs)
            ax.set_xticks(x)
            ax.set_xlim(-0.7, len(agg.scenarios) - 0.3)
            crowded = len(agg.scenarios) > 3  # beyond three, the scenario names overlap unless slanted
            ax.set_xticklabels(agg.scenarios, fontsize=8, rotation=20 if crowded else 0, ha='right' if crowded else 'center')
            ax.set_title(f'{name}: {baseline} vs {tmcdr}', fontsize=9)
            if col == 0:
                ax.legend(fontsize=7, loc='lower right')
            ax.grid(axis='y', alpha=0.3)
    return _save(plt, fig, path, 'Cold test users, mean ± 95% CI over seeds (cf. the TMCDR paper, Figure 1)', dpi=100)


# The cold-to-warm figure's rows: the ranking metric the router chooses on, then the paper's AUC.
KSHOT_METRICS = (('NDCG@10', 'ndcg@10'), ('AUC', 'uauc'))


def plot_kshot(agg, path, metrics=KSHOT_METRICS):
    """The cold-to-warm figure: per scenario (a column) each metric (a row) against K, the target interactions a cold
    test user revealed; a line per model, its mean over seeds with a band for the 95% CI. A router (a model whose
    runs carry ``routing``, e.g. KRouter) is a broad translucent black line under the others (the line it runs along
    is the method it serves); target-only models dashed. K on
    a symmetric log axis (0, 1, 3, ... 20 spread evenly enough to read). 1000 px wide."""
    from recbole_tmcdr.benchmark.aggregate import routers
    plt = _pyplot()
    scenarios = [s for s in agg.scenarios if any(pair[0] == s for pair in agg.kshot)]
    if not scenarios or plt is None:
        return None
    routed = routers(agg)
    singles = [m for m in agg.models if m not in routed and any((s, m) in agg.kshot for s in scenarios)]
    colors = plt.get_cmap('tab10').colors
    fig, axes = plt.subplots(len(metrics), len(scenarios), figsize=(10, 1.1 + 2.7 * len(metrics)), squeeze=False)
    handles = {}
    for col, scenario in enumerate(scenarios):
        all_ks = sorted({k for model in agg.models for k in agg.kshot.get((scenario, model), {})})
        for row, (name, key) in enumerate(metrics):
            ax = axes[row][col]
            for model in singles + routed:
                per_k = agg.kshot.get((scenario, model)) or {}
                ks = [k for k in per_k if per_k[k].get(key)]
                if not ks:
                    continue
                summaries = [per_k[k][key] for k in ks]
                router = model in routed
                color = 'black' if router else colors[singles.index(model) % len(colors)]
                # the router: a broad translucent black line under the others, so that the method it serves shows
                handles[model], = ax.plot(ks, [s.mean for s in summaries], marker='o', markersize=7 if router else 3,
                                          linewidth=6 if router else 1.3, color=color, alpha=0.35 if router else 1.0,
                                          zorder=2 if router else 3, linestyle='--' if is_target_only(model) else '-')
                ax.fill_between(ks, [s.low for s in summaries], [s.high for s in summaries], color=color,
                                alpha=0.1, linewidth=0, zorder=1)
            ax.set_xscale('symlog', linthresh=1)
            ax.set_xticks(all_ks)
            ax.set_xticklabels([str(k) for k in all_ks])
            ax.minorticks_off()
            if row == len(metrics) - 1:
                ax.set_xlabel('K revealed target interactions')
            if col == 0:
                ax.set_ylabel(name)
            if row == 0:
                ax.set_title(scenario, fontsize=10)
            ax.grid(alpha=0.3)
    shown = [m for m in singles + routed if m in handles]
    fig.legend([handles[m] for m in shown], [m + (' (router)' if m in routed else '') for m in shown], fontsize=8,
               loc='lower center', ncol=min(len(shown), 6), frameon=False)
    rows_of_legend = -(-len(shown) // 6)
    return _save(plt, fig, path, 'Cold to warm: cold test users revealing K target interactions, mean and 95% CI over '
                 'seeds (router: broad black line)', dpi=100, rect=(0, 0.045 * rows_of_legend + 0.01, 1, 1))


def plot_pair_differences(agg, path, metrics=METRICS):
    """One row of panels per scenario, one panel per metric: for each compared pair (TMCDR_X vs EMCDR_X, TMCDR_CML vs
    SSCDR) the paired difference TMCDR_X - baseline with its 95% CI (red), and the target-only floor's (chosen on
    validation) paired difference to the same baseline (grey): a baseline below the floor shows as a grey mark right
    of 0.
    About 1000 px wide."""
    plt = _pyplot()
    by_scenario = {}
    for c in agg.comparisons:
        by_scenario.setdefault(c.scenario, []).append(c)
    if not by_scenario or plt is None:
        return None
    fig, axes = plt.subplots(len(by_scenario), len(metrics), figsize=(10, 0.6 + 2.1 * len(by_scenario)),
                             squeeze=False)
    for row, (scenario, comparisons) in enumerate(by_scenario.items()):
        floor = agg.floor.get(scenario)
        for col, (name, key) in enumerate(metrics):
            ax = axes[row][col]
            shown = [c for c in comparisons if c.key == key]
            for y, c in enumerate(shown):
                test = c.test
                if test.ci_low is not None:
                    ax.errorbar(test.diff, y, xerr=[[test.diff - test.ci_low], [test.ci_high - test.diff]], fmt='o',
                                color='#d62728', capsize=3)
                elif test.diff is not None:
                    ax.plot(test.diff, y, 'o', color='#d62728')
                floor_cell, base_cell = agg.summary(scenario, floor, key), agg.summary(scenario, c.baseline, key)
                if floor_cell and base_cell:
                    floor_diff = paired_test(floor_cell.by_seed, base_cell.by_seed).diff
                    if floor_diff is not None:
                        ax.plot(floor_diff, y, 'x', color='#7f7f7f', markersize=7)
            ax.axvline(0.0, color='black', linewidth=0.8)
            ax.set_yticks(range(len(shown)))
            ax.set_yticklabels([f'{c.tmcdr} − {c.baseline}' for c in shown], fontsize=8)
            ax.set_ylim(-0.6, len(shown) - 0.4)
            ax.invert_yaxis()
            ax.grid(axis='x', alpha=0.3)
            # Two lines: the panels are narrower than their long y labels, and one line ran off the figure.
            ax.set_title(f'{scenario}\nΔ{name}' + (f' (× = {floor})' if floor else ''), fontsize=9)
    return _save(plt, fig, path, 'Paired difference to the baseline on cold test users, mean and 95% CI over seeds '
                 '(×: the target-only floor − the same baseline;\na red dot left of its × is below the floor)', dpi=100)


# line styles of TMCDR's variants in the training curves (dotted is a curve's tail, dashed a floor)
VARIANT_STYLES = {'TMCDRAdapted': '-.', 'TMCDRPaperStep': (0, (6, 1, 1, 1, 1, 1))}


def _model_colors(models, plt):
    """A colour per model: TMCDR_X (and its variants) the dark shade of base model X's hue, its baseline (EMCDR_X;
    SSCDR for CML) the light shade, target-only floors grey, any other model a hue of its own."""
    tab20, greys = plt.get_cmap('tab20').colors, plt.get_cmap('Greys')
    spare_colors = tab20[2 * len(BASE_MODELS):] + plt.get_cmap('tab20b').colors
    partner = {tmcdr: baseline for baseline, tmcdr in COMPARED_PAIRS}  # TMCDR_CML: SSCDR, the paper's pair
    spare = iter(range(10 ** 6))
    floors = [m for m in models if is_target_only(m)]
    colors = {}
    for model in models:
        tmcdr = variant_of(model) or model
        baseline_of = [t for t, b in partner.items() if b == model]
        if model in floors:
            colors[model] = greys(0.45 + 0.4 * floors.index(model) / max(1, len(floors)))
        elif tmcdr in partner:
            colors[model] = tab20[2 * BASE_MODELS.index(tmcdr.partition('_')[2])]
        elif baseline_of:
            colors[model] = tab20[2 * BASE_MODELS.index(baseline_of[0].partition('_')[2]) + 1]
        else:
            colors[model] = spare_colors[next(spare) % len(spare_colors)]
    return colors


def plot_training_curves(agg, path):
    """One panel per scenario: each model's validation score on the cold validation users (the runs'
    ``valid_metric``) per epoch of its bridge stage, mean over seeds (TMCDR's warm start and meta stages one after
    the other). Seeds stop at different epochs: the line is solid while every seed trains, dotted after, where it
    is the mean of the seeds still training. Target-only models dashed. About 1000 px wide."""
    plt = _pyplot()
    curves = training_curves(agg)
    if curves.empty or plt is None:
        return None
    scenarios, models = list(curves.index.unique('scenario')), list(curves.index.unique('model'))
    colors = _model_colors(models, plt)
    rows, ncols = math.ceil(len(scenarios) / 2), min(2, len(scenarios))
    fig, axes = plt.subplots(rows, ncols, figsize=(10, 0.7 + 3.3 * rows), squeeze=False)
    for ax in axes.flat[len(scenarios):]:
        ax.set_visible(False)
    valid_metrics = {s: ', '.join(sorted({str(r.get('valid_metric', 'valid')) for r in agg.records
                                          if r['scenario'] == s})) for s in scenarios}
    legend = {}
    for ax, scenario in zip(axes.flat, scenarios):
        for model, curve in curves.loc[scenario].groupby(level='model', observed=True):
            curve = curve.droplevel('model')
            style = '--' if is_target_only(model) else VARIANT_STYLES.get(model.partition('_')[0], '-')
            color, every_seed = colors[model], curve[curve['seeds'] == curve['of']]
            most_seeds = curve[2 * curve['seeds'] >= curve['of']]  # the tail of a seed or two would jump
            ax.plot(most_seeds.index, most_seeds['mean'], linestyle=':', color=color, linewidth=1)
            # a keyword: a dash tuple (TMCDRPaperStep's) given as plot's format argument is taken for data
            legend[model], = ax.plot(every_seed.index, every_seed['mean'], linestyle=style, color=color, linewidth=1.4)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel('epoch of the bridge stage')
        ax.set_ylabel(valid_metrics[scenario])
        ax.grid(alpha=0.3)
    shown = [m for m in models if m in legend]
    fig.legend([legend[m] for m in shown], shown, fontsize=7, loc='center right')
    return _save(plt, fig, path, 'Validation score per epoch of the bridge stage (cold validation users), mean over '
                 'seeds\n(dotted: after a seed stopped, the mean of the seeds still training, while at least half '
                 'are)', dpi=100,
                 rect=(0, 0, 0.84, 1))
