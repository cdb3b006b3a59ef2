"""The parts of a benchmark report, each from an :class:`~.aggregate.Aggregate`: its tables (pandas DataFrames,
written with ``DataFrame.to_markdown``; ``table.csv`` with ``DataFrame.to_csv``) and the paragraphs generated
from the same numbers, so that the prose cannot contradict the tables."""

import pandas as pd
from tabulate import DataRow, TableFormat

from recbole_tmcdr.benchmark import paper
from recbole_tmcdr.benchmark.aggregate import (
    FLOOR_MODELS, METRICS, Verdict, cell_frame, is_target_only, variant_kind, variant_of,
)
from recbole_tmcdr.benchmark.stats import ALPHA, MIN_PAIRS, fmt_p

_ROW = DataRow('|', '|', '|')


def _alignment_row(widths, _aligns):
    return '|' + '|'.join(['---'] + [':---:'] * (len(widths) - 1)) + '|'


# A GitHub pipe table whose cells are not padded to a common width: the first column left-aligned, the others
# centred.
PIPE_TABLE = TableFormat(lineabove=None, linebelowheader=_alignment_row, linebetweenrows=None, linebelow=None,
                         headerrow=_ROW, datarow=_ROW, padding=1, with_header_hide=None)


def markdown_table(frame):
    """``frame`` as a Markdown table, its columns the header, its cells as they are (no number parsing)."""
    return frame.to_markdown(index=False, tablefmt=PIPE_TABLE, disable_numparse=True, stralign=None, numalign=None)


def rows_table(header, rows):
    return markdown_table(pd.DataFrame(rows, columns=header))


def format_summary(summary, digits=4):
    if summary is None:
        return '–'
    text = f'{summary.mean:.{digits}f}'
    if summary.half_width is not None:
        text += f' ± {summary.half_width:.{digits}f}'
    return text


def _model_label(model):
    kind = 'target-only' if is_target_only(model) else variant_kind(model)
    return f'{model} ({kind})' if kind else model


def main_table(agg, metrics=METRICS):
    """Rows = models, columns = scenario x metric: mean ± CI, bold where best of the column, ``\\*`` (``\\*↓``)
    where a TMCDR model differs significantly from the baseline, ``†`` for negative transfer, ``(n=…)`` where a
    model has fewer seeds than the scenario's most."""
    auc = metrics[0][1]
    frame = cell_frame(agg, metrics)
    frame['best'] = frame.groupby(['scenario', 'metric'])['mean'].transform('max')
    frame['max_n'] = frame['scenario'].map(frame[frame['metric'] == auc].groupby('scenario')['n'].max()).fillna(0)

    def cell(row):
        if row.summary is None:
            return '–'
        text = f'**{format_summary(row.summary)}**' if row.mean == row.best else format_summary(row.summary)
        if agg.starred(row.scenario, row.model, row.metric):
            text += '\\*' + ('↓' if agg.significantly_worse(row.scenario, row.model, row.metric) else '')
        text += ' †' if row.flagged else ''
        return text + (f' (n={row.summary.n})' if row.summary.n < row.max_n else '')

    frame['cell'] = [cell(row) for row in frame.itertuples()]
    columns = [(scenario, key) for scenario in agg.scenarios for _, key in metrics]
    table = frame.pivot(index='model', columns=['scenario', 'metric'], values='cell')
    table = table.reindex(index=agg.models, columns=columns).fillna('–')
    table.columns = [f'{scenario} {name}' for scenario in agg.scenarios for name, _ in metrics]
    table.insert(0, 'model', [_model_label(m) for m in agg.models])
    return markdown_table(table)


CSV_FIELDS = ('mean', 'ci95', 'n', 'baseline', 'diff_vs_baseline', 'p_vs_baseline', 'p_holm_vs_baseline')


def _csv_number(value, spec):
    return '' if value is None else format(value, spec)


def write_csv(agg, path, metrics=METRICS):
    """``table.csv``: a row per model, per scenario and metric the columns of :data:`CSV_FIELDS` (``ci95``: the
    half-width of the 95% CI; ``baseline``: the model of the paired test) and the negative-transfer flag; empty
    where a model was not run (or not tested: a floor, or a scenario without one)."""
    frame = cell_frame(agg, metrics)
    summary, test = frame['summary'], frame['test']
    fields = pd.DataFrame({
        'mean': summary.map(lambda s: _csv_number(s and s.mean, '.6f')),
        'ci95': summary.map(lambda s: _csv_number(s and s.half_width, '.6f')),
        'n': summary.map(lambda s: '' if s is None else s.n),
        'baseline': [agg.tests[(s, m)]['baseline'] if t is not None else ''
                     for s, m, t in zip(frame['scenario'], frame['model'], test)],
        'diff_vs_baseline': test.map(lambda t: _csv_number(t and t.diff, '.6g')),
        'p_vs_baseline': test.map(lambda t: _csv_number(t and t.p, '.6g')),
        'p_holm_vs_baseline': test.map(lambda t: _csv_number(t and t.p_holm, '.6g'))})
    long = pd.concat([frame[['scenario', 'model', 'metric']], fields], axis=1).melt(
        id_vars=['scenario', 'model', 'metric'], var_name='field')
    long['column'] = long['scenario'] + '/' + long['metric'] + '/' + long['field']
    checked = [not is_target_only(m) and s in agg.floor for s, m in zip(frame['scenario'], frame['model'])]
    flags = pd.DataFrame({'model': frame['model'], 'value': frame['flagged'].astype(int).where(checked, ''),
                          'column': frame['scenario'] + '/' + frame['metric'] + '/negative_transfer'})
    header = [f'{scenario}/{key}/{name}' for scenario in agg.scenarios for _, key in metrics
              for name in (*CSV_FIELDS, 'negative_transfer')]
    table = pd.concat([long, flags]).pivot(index='model', columns='column', values='value')
    table = table.reindex(index=agg.models, columns=header)
    table = table.mask(table.isna(), '')
    table.insert(0, 'target_only', [int(is_target_only(m)) for m in agg.models])
    table.to_csv(path, index_label='model', lineterminator='\r\n', encoding='utf-8')  # the csv module's line ends


def _test_cells(test):
    """Effect size with its 95% CI, raw p and Holm-adjusted p of one PairedTest."""
    if test is None:
        return ['–', 'n/a', 'n/a']
    if not test.tested:
        reason = f'n/a (n={test.n})' if test.n < MIN_PAIRS else 'n/a (equal)'
        return [test.ci_text(), reason, reason]
    star = ' \\*' + ('↓' if test.diff < 0 else '') if test.significant else ''
    return [test.ci_text(), fmt_p(test.p), fmt_p(test.p_holm) + star]


def tests_table(agg, metrics=METRICS):
    if not agg.tests:
        return None
    header = ['scenario', 'model', 'baseline (best other on validation AUC)', 'pairs']
    for name, _ in metrics:
        header += [f'Δ{name} [95% CI]', f'p ({name})', f'Holm p ({name})']
    rows = [[scenario, model, entry['baseline'], entry[metrics[0][1]].n,
             *[cell for _, key in metrics for cell in _test_cells(entry[key])]]
            for (scenario, model), entry in agg.tests.items()]
    return rows_table(header, rows)


def pairs_table(comparisons, metrics=METRICS, subject='TMCDR'):
    """``pair_comparisons`` as a table, a row per scenario and pair: TMCDR_X against EMCDR_X for each base model
    X (and TMCDR_CML against SSCDR, the paper's Figure 1 pair), means over seeds, the paired difference with its
    95% CI, raw and Holm-adjusted p; None if no pair was run. Also ``variant_comparisons``, whose first model is
    ``subject``."""
    if not comparisons:
        return None
    frame = pd.DataFrame({'scenario': [c.scenario for c in comparisons],
                          'pair': [f'{c.tmcdr} vs {c.baseline}' for c in comparisons],
                          'metric': [c.metric for c in comparisons], 'comparison': comparisons})
    rows = []
    for (scenario, pair), group in frame.groupby(['scenario', 'pair'], sort=False):
        by_metric = dict(zip(group['metric'], group['comparison']))
        rows.append([scenario, pair, max(c.n for c in by_metric.values())])
        for name, _ in metrics:
            c = by_metric.get(name)
            rows[-1] += (['', '', '', '', ''] if c is None else
                         [f'{c.tmcdr_mean:.4f} vs {c.baseline_mean:.4f}', *_test_cells(c.test), c.verdict])
    header = ['scenario', 'pair', 'seeds']
    for name, _ in metrics:
        header += [name, f'Δ{name} [95% CI]', f'p ({name})', f'Holm p ({name})', f'{name}: {subject} is']
    return rows_table(header, rows)


def pairs_summary_text(comparisons, family_size=None):
    """Generated from ``pair_comparisons``, so that a report's prose cannot contradict its table: where TMCDR_X
    is significantly better / worse than its baseline after Holm's correction, and how many were not."""
    if not comparisons:
        return None
    lines = []
    for title, keep in (('TMCDR_X vs EMCDR_X', lambda c: c.baseline.startswith('EMCDR_')),
                        ('TMCDR_CML vs SSCDR', lambda c: c.baseline == 'SSCDR')):
        group = [c for c in comparisons if keep(c)]
        if not group:
            continue
        tested = [c for c in group if c.verdict != Verdict.UNTESTED]
        if lines:
            lines.append('')  # a paragraph break: otherwise Markdown folds this into the list above
        untested = len(group) - len(tested)
        lines.append(f'**{title}**: {len(tested)} tested comparisons (one per scenario, pair and metric)'
                     + (f'; {untested} not tested (fewer than {MIN_PAIRS} common seeds, or no variation).'
                        if untested else '.'))
        for verdict in (Verdict.BETTER, Verdict.WORSE):
            hits = [c for c in tested if c.verdict == verdict]
            listed = '; '.join(f'{c.tmcdr} {c.label}' for c in hits) or 'none'
            lines.append(f'- TMCDR significantly {verdict.upper()}: {len(hits)} ({listed}).')
        quiet = sum(c.verdict == Verdict.NOT_SIGNIFICANT for c in tested)
        lines.append(f'- Not significant: {quiet}.')
    size = f' ({family_size} tests with a p-value)' if family_size is not None else ''
    lines += ['', f'Significance is judged on Holm-adjusted p-values (family-wise error {ALPHA}) over the family of '
                 f'every TMCDR test in this report{size}: these pairs and the tests against the best other model '
                 '(TMCDR\'s variants, if any, are a family of their own). The 95% CIs of Δ are those of each test '
                 'alone, not adjusted: a CI that excludes 0 can go with a Holm p above the threshold.']
    return '\n'.join(lines)


def _significant_variants(comparisons):
    """'TMCDRAdapted_BPR above TMCDR_BPR on AUC, NDCG@10' for each variant and reference with a significant
    difference (Holm over the variants' family), in order of first appearance."""
    grouped = {}
    for c in comparisons:
        if c.verdict in (Verdict.BETTER, Verdict.WORSE):
            side = 'above' if c.verdict == Verdict.BETTER else 'below'
            grouped.setdefault(f'{c.tmcdr} {side} {c.baseline}', []).append(c.metric)
    return [f'{pair} on {", ".join(metrics)}' for pair, metrics in grouped.items()]


def variants_text(comparisons, scenarios):
    """What the variants table says, generated from it: which variant differs significantly (Holm over the
    variants' own family) from its TMCDR_X or from TMCDR_X's baseline, per scenario."""
    if not comparisons:
        return None
    kinds = dict.fromkeys(f'{c.tmcdr} ({variant_kind(c.tmcdr)}, of {variant_of(c.tmcdr)})' for c in comparisons)
    tested = sum(c.verdict != Verdict.UNTESTED for c in comparisons)
    lines = [f'Variants run: {", ".join(kinds)}. Each is compared, paired over seeds, with its TMCDR_X and with '
             'TMCDR_X\'s baseline in the paper. They are reported beside TMCDR_X, never in its place, and their '
             f'tests are a Holm family of their own ({tested} tested), so they do not weigh on the comparison above. '
             f'Significant after Holm (p < {ALPHA}):', '']
    for scenario in scenarios:
        found = _significant_variants([c for c in comparisons if c.scenario == scenario])
        if any(c.scenario == scenario for c in comparisons):
            lines.append(f'- {scenario}: ' + ('; '.join(found) if found else 'none') + '.')
    return '\n'.join(lines)


def _pair_verdict(c):
    if c.verdict == Verdict.UNTESTED:
        return f'{c.metric} n/a (n={c.n})'
    word = {Verdict.BETTER: 'BETTER', Verdict.WORSE: 'WORSE'}.get(c.verdict, 'n.s.')
    return f'{c.metric} {word} (Δ {c.test.ci_text()}, Holm p {fmt_p(c.test.p_holm)})'


def verdict_summary(agg):
    """The report's opening: per scenario, the Holm-adjusted verdict of each compared pair (TMCDR_X vs EMCDR_X,
    TMCDR_CML vs SSCDR) on each metric, and which transfer models fall below the best target-only floor."""
    lines = []
    for scenario in agg.scenarios:
        seeds = agg.runs.loc[agg.runs['scenario'] == scenario, 'seed'].nunique()
        pairs = {}
        for c in agg.comparisons:
            if c.scenario == scenario:
                pairs.setdefault(f'{c.tmcdr} vs {c.baseline}', []).append(_pair_verdict(c))
        parts = [f'{pair}: {", ".join(verdicts)}' for pair, verdicts in pairs.items()] or ['no compared pair run']
        variants = [c for c in agg.variant_comparisons if c.scenario == scenario]
        if variants:
            parts.append('variants of TMCDR (own Holm family): '
                         + ('; '.join(_significant_variants(variants)) or 'no significant difference'))
        if agg.floors.get(scenario) and any(not is_target_only(m) for m in agg.models_in(scenario)):
            flagged = {name: [m for m in agg.models_in(scenario) if agg.flagged(scenario, m, key)]
                       for name, key in METRICS}
            parts.append(f'negative transfer (below {agg.floor[scenario]}, one-sided, Holm): '
                         + ', '.join(f'{name} {", ".join(models) or "none"}' for name, models in flagged.items()))
        lines.append(f'- **{scenario}** ({seeds} seed{"s" if seeds != 1 else ""}): ' + '; '.join(parts) + '.')
    return '\n'.join(lines)


def negative_transfer_text(agg, metrics=METRICS):
    size = agg.family_sizes.get('floor')
    lines = [f'One-sided paired tests of every transfer model against the floor, on each metric; Holm over all '
             f'of them ({size} tests with a p-value).', ''] if size else []
    for scenario in agg.scenarios:
        transfer = [m for m in agg.models_in(scenario) if not is_target_only(m)]
        if not agg.floors.get(scenario):
            if transfer:
                lines.append(f'- {scenario}: no target-only floor was run ({", ".join(FLOOR_MODELS)}): '
                             'negative transfer not checked; add TargetPop to the models.')
            continue
        floor = agg.floor[scenario]
        if not transfer:  # e.g. a spec still running
            lines.append(f'- {scenario}: no transfer model finished yet: nothing to compare with the floor {floor}.')
            continue
        for name, key in metrics:
            entries = [entry for entry in agg.floor_tests.get(scenario, []) if entry[1] == key]
            floor_summary = agg.summary(scenario, floor, key)
            if floor_summary is None:
                lines.append(f'- {scenario}: the target-only floor {floor} has no {name}: {name} not checked.')
                continue
            floor_mean = floor_summary.mean
            # each against the floor over their common seeds, as the test pairs them
            shown = [entry for entry in entries if entry[2] <= entry[4] or entry[-1].significant]
            if not shown:
                lines.append(f'- {scenario}: every transfer model has a mean {name} above the target-only floor '
                             f'{floor} ({name} {floor_mean:.4f}).')
            for model, _, mean, _, floor_mean, test in shown:
                verdict = ('† negative transfer' if test.significant else 'not above the floor (n.s.)' if test.tested
                           else f'not above the floor (not tested, n={test.n})')
                lines.append(f'- {scenario}: {model} ({name} {mean:.4f}) vs the target-only floor {floor} '
                             f'({name} {floor_mean:.4f}): {verdict}; Δ {test.ci_text()}, one-sided p {fmt_p(test.p)}, '
                             f'Holm p {fmt_p(test.p_holm)}.')
    return '\n'.join(lines)


def paper_section(agg, metrics=METRICS):
    lines = []
    matched = [s for s in agg.scenarios if s in paper.SCENARIO_TO_PAPER]
    for scenario in matched:
        number = paper.SCENARIO_TO_PAPER[scenario]
        rows = []
        for model in agg.models_in(scenario):
            if model not in paper.PAPER_TABLE1:
                continue
            row = [model]
            for _, key in metrics:
                theirs, ours = paper.paper_value(model, key, number), agg.summary(scenario, model, key)
                row += ['–' if theirs is None else f'{theirs:.4f}', format_summary(ours),
                        '–' if theirs is None or ours is None else f'{ours.mean - theirs:+.4f}']
            rows.append(row)
        if not rows:
            continue
        header = ['model']
        for name, _ in metrics:
            header += [f'paper {name}', f'ours {name}', 'Δ']
        lines.append(f'**{scenario}** = paper scenario {number} ({paper.PAPER_SCENARIOS[number]}):\n')
        lines.append(rows_table(header, rows))
        gain = _gain(agg, scenario)
        if gain is not None:
            theirs = paper.paper_value('TMCDR_MF', 'uauc', number) - paper.paper_value('EMCDR_MF', 'uauc', number)
            lines.append(f'\nTMCDR_MF − EMCDR_MF (AUC): paper {theirs:+.4f}, ours ' + _gain_text(agg, scenario, gain, theirs))
        lines.append('')
    unmatched = [s for s in agg.scenarios if s not in paper.SCENARIO_TO_PAPER]
    if matched and unmatched:
        lines.append(f'No counterpart in the paper\'s Table 1: {", ".join(unmatched)}.\n')
    low, high = paper.paper_gain_range('uauc')
    note = (f'The paper reports TMCDR_MF above EMCDR_MF on all six of its scenarios, by {low:+.4f} to {high:+.4f} '
            'AUC (Table 1). TMCDR_X\'s defaults depart from the paper\'s inner step: its YAML averages the task loss '
            'where the paper sums it, with a step size of its own (the paper: 0.005); TMCDRPaperStep_X, where run, '
            'takes the paper\'s literal step.')
    if not matched:
        lines.append(f'No scenario of this benchmark is one of the paper\'s (paper numbers are known for: '
                     f'{", ".join(sorted(paper.SCENARIO_TO_PAPER))}). {note}')
        for scenario in agg.scenarios:
            gain = _gain(agg, scenario)
            if gain is not None:
                lines.append(f'- {scenario}: ours TMCDR_MF − EMCDR_MF = {gain:+.4f} AUC.')
    else:
        lines.append(note + ' Differences in data preparation and evaluation protocol (e.g. full ranking of all '
                     'target items here) make absolute numbers differ; compare the ordering.')
    return '\n'.join(lines)


def _gain_text(agg, scenario, gain, theirs):
    """Our TMCDR_MF - EMCDR_MF AUC: the paired difference over their common seeds with its 95% CI, saying whether
    the paper's gain lies in it, where the pair was tested; else the difference of the means."""
    test = next((c.test for c in agg.comparisons if c.scenario == scenario and c.tmcdr == 'TMCDR_MF'
                 and c.baseline == 'EMCDR_MF' and c.key == 'uauc'), None)
    if test is None or test.ci_low is None:
        return f'{gain:+.4f} (difference of the means).'
    where = ('inside it' if test.ci_low <= theirs <= test.ci_high else
             'above it: not reproduced' if theirs > test.ci_high else 'below it')
    return (f'{test.diff:+.4f} [{test.ci_low:+.4f}, {test.ci_high:+.4f}] (paired over their {test.n} common seeds, '
            f'95% CI); the paper\'s gain lies {where}.')


def _gain(agg, scenario):
    t, e = agg.summary(scenario, 'TMCDR_MF', 'uauc'), agg.summary(scenario, 'EMCDR_MF', 'uauc')
    return None if t is None or e is None else t.mean - e.mean


def kshot_section(agg, metrics=METRICS):
    """Per scenario, a table of models x K: every metric's mean ± CI, '/'-separated."""
    if not agg.kshot:
        return None
    frame = pd.DataFrame([(scenario, model, k, ' / '.join(format_summary(per_metric.get(key), 3) for _, key in metrics))
                          for (scenario, model), per_k in agg.kshot.items() for k, per_metric in per_k.items()],
                         columns=['scenario', 'model', 'K', 'cell'])
    parts = []
    for scenario in agg.scenarios:
        cells = frame[frame['scenario'] == scenario]
        if cells.empty:
            continue
        table = cells.pivot(index='model', columns='K', values='cell')
        table = table.reindex(index=[m for m in agg.models if m in table.index], columns=sorted(table.columns))
        table = table.fillna(' / '.join('–' for _ in metrics)).rename(columns=lambda k: f'K={k}')
        table.insert(0, 'model', [_model_label(m) for m in table.index])
        parts.append(f'**{scenario}** ({" / ".join(name for name, _ in metrics)}, cold test users with at least '
                     'K+1 target interactions; the first K are revealed):\n\n' + markdown_table(table))
    return '\n\n'.join(parts)
