"""Cumulative regret against rounds: one figure per scenario, one panel per per-user policy (a line per prior, and
popularity dotted for reference), and a panel of the policies without a prior (popularity, the item-level bandits).
Bands are 95% CIs over seeds (they mostly show how the seeds' cold users differ: the paired differences of the
report are much tighter)."""

from recbole_tmcdr.benchmark.figures import _pyplot, _save
from recbole_tmcdr.explore.policies import POLICIES
from recbole_tmcdr.explore.problem import NO_TRANSFER

PRIOR_COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b']
SHARED_COLORS = ['#000000', '#e377c2', '#17becf', '#bcbd22']


def _band(ax, agg, stream, label, color, style='-', band=True):
    mean, half = agg.curve(stream, 'regret')
    rounds = range(1, len(mean) + 1)
    ax.plot(rounds, mean, style, color=color, label=label, linewidth=1.6)
    if band:
        ax.fill_between(rounds, mean - half, mean + half, color=color, alpha=0.12, linewidth=0)


def plot_regret(agg, path, title):
    """``path`` (PNG, 1000 px wide) for the :class:`~recbole_tmcdr.explore.report.Aggregate` of one scenario."""
    plt = _pyplot()
    if plt is None:
        return None
    policies = list(dict.fromkeys(s.split('|')[0] for s in agg.streams))
    with_prior = [p for p in policies if POLICIES.get(p).uses_prior]
    without = [p for p in policies if not POLICIES.get(p).uses_prior]
    panels = with_prior + (['(no prior)'] if without else [])
    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(10, 3.4 * rows + 0.6), squeeze=False, sharex=True, sharey=True)
    priors = list(dict.fromkeys(s.split('|')[1] for s in agg.streams if s.split('|')[1] != '-'))
    priors = sorted(priors, key=lambda p: p != NO_TRANSFER)  # no transfer first, then the models
    reference = next((f'{p}|-' for p in ('popularity',) if f'{p}|-' in agg.streams), None)
    for ax, panel in zip(axes.flat, panels):
        if panel == '(no prior)':
            for color, policy in zip(SHARED_COLORS, without):
                _band(ax, agg, f'{policy}|-', policy, color)
            ax.set_title('without a prior', fontsize=10)
        else:
            for color, prior in zip(PRIOR_COLORS if NO_TRANSFER not in priors else ['#7f7f7f'] + PRIOR_COLORS,
                                    priors):
                _band(ax, agg, f'{panel}|{prior}', prior.replace('_', ' '), color)
            if reference:
                _band(ax, agg, reference, 'popularity', 'black', ':', band=False)
            ax.set_title(panel.replace('_', ' '), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc='upper left')
    for ax in axes[-1]:
        ax.set_xlabel('round t')
    for ax in axes[:, 0]:
        ax.set_ylabel('cumulative regret per user')
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return _save(plt, fig, path, title, dpi=100)
