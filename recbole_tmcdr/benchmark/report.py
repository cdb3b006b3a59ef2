"""Report of a benchmark directory: ``python -m recbole_tmcdr.benchmark.report OUT``.

Reads ``OUT/results.jsonl`` (the last line of each (scenario, model, seed)) and writes:

* ``runs.csv``: one row per run (chosen hyperparameters, scores, bridge-stage epochs and steps, seconds).
* ``table.md`` / ``table.csv``: Table-1 style, rows = models (target-only floors first), columns = scenario x
  {AUC (``uauc``: per-user AUC averaged over users, the paper's AUC), NDCG@10} on the cold TEST users, mean ±
  95% CI over seeds (t-distribution, ``mean ± t_{0.975,n-1} sd / sqrt(n)``; no CI for one seed). Best mean
  per column in bold. ``*``: paired t-test over seeds (``scipy.stats.ttest_rel``, paired by seed, two-sided,
  at least 3 seeds) of each ``TMCDR_*`` model against the best other model of the scenario that is neither
  TMCDR nor a router (by mean VALIDATION AUC) with Holm-adjusted p < 0.05 (the family: every TMCDR test of the
  report). ``†``: negative transfer, where a one-sided paired test (Holm-adjusted over the transfer models and
  metrics) finds a model's test AUC (or NDCG@10) below the best target-only floor by validation AUC
  (``TargetPop``, ``Pop``, ``BPR`` or any other target-only model run). Then
  the p-values, the paper's numbers next to ours where the scenario is one of the paper's, K-shot results,
  chosen hyperparameters, the bridge stage's epochs and run times. TMCDR's variants (TMCDRAdapted_X beyond the
  paper, TMCDRPaperStep_X an ablation) are not tested against the best other model: a section compares each with
  its TMCDR_X and TMCDR_X's baseline, in a Holm family of its own.
* ``differences.png``: per scenario, the paired difference TMCDR_X - baseline with its 95% CI, and the best
  target-only floor's difference to the same baseline.
* ``figure1.png``: EMCDR_X vs TMCDR_X (SSCDR vs TMCDR_CML) per scenario, X in MF, BPR, ListRankMF, CML, with
  95% CI error bars (the paper's Figure 1).
* ``cold_to_warm.png``: NDCG@10 and AUC vs K per model (95% CI bands, a router highlighted), when K-shot results
  exist; the cold-to-warm section (:mod:`.cold_to_warm`) says who leads at each K and the router's margin.
* ``training.png``: the validation score per epoch of each model's bridge stage, mean over seeds.

The numbers come from :mod:`.aggregate`, the tables and paragraphs from :mod:`.sections` (models) and
:mod:`.run_sections` (single runs), the figures from :mod:`.figures`; this module puts them in one document
and writes the files.
"""

import argparse
import json
import os
import sys

import pandas as pd

from recbole_tmcdr.benchmark.aggregate import (  # noqa: F401 - the report's API
    BASE_MODELS, COMPARED_PAIRS, FLOOR_MODELS, METRICS, TESTED_PREFIX, Aggregate, PairComparison, Verdict, aggregate,
    is_target_only, pair_comparisons, variant_of,
)
from recbole_tmcdr.benchmark.cold_to_warm import cold_to_warm_section
from recbole_tmcdr.benchmark.results import RESULTS_FILE, latest_records, load_records, run_key
from recbole_tmcdr.benchmark.run_sections import (  # noqa: F401 - the report's API
    cost_section, hyperparameter_section, run_time_text, search_section, training_section, write_runs_csv,
)
from recbole_tmcdr.benchmark.sections import (  # noqa: F401 - the report's API
    format_summary, kshot_section, main_table, negative_transfer_text, pairs_summary_text, pairs_table,
    paper_section, tests_table, variants_text, verdict_summary, write_csv,
)
from recbole_tmcdr.benchmark.stats import (  # noqa: F401 - Summary/summarize are part of this module's API
    ALPHA, MIN_PAIRS, PairedTest, Summary, fmt_p as _fmt_p, summarize,
)

DEFAULT_TITLE = 'Cold-start cross-domain benchmark'


def _counted(n, noun):
    return f'{n} {noun}' + ('' if n == 1 else 's')


def _plan(spec):
    """The spec's scenario labels, models, seeds, and ``only`` restricted to its models."""
    scenarios, models, seeds = (spec.get(k) or [] for k in ('scenario_labels', 'models', 'seeds'))
    return scenarios, models, seeds, {model: labels for model, labels in (spec.get('only') or {}).items()
                                      if model in models}


def _coverage(agg, spec):
    """(planned, missing): the spec's (scenario, model, seed) and those without a finished run; None without a
    spec."""
    scenarios, models, seeds, only = _plan(spec)
    planned = pd.MultiIndex.from_product([scenarios, models, [int(s) for s in seeds]],
                                         names=['scenario', 'model', 'seed'])
    planned = planned[[model not in only or scenario in only[model] for scenario, model, _ in planned]]
    if planned.empty:
        return None
    return planned, planned[~planned.isin(list(zip(agg.runs['scenario'], agg.runs['model'], agg.runs['seed'])))]


def interim_text(agg, spec):
    """The report's first words while planned runs are missing (None once the spec is complete)."""
    coverage = _coverage(agg, spec)
    if not coverage or not len(coverage[1]):
        return None
    planned, missing = coverage
    narrowed = spec.get('narrowed_from')
    return (f'**Interim: {len(planned) - len(missing)} of {len(planned)} planned runs are finished.** The verdicts '
            'below are those of the finished runs and may change as the others finish (the coverage below lists them).'
            + (' The command\'s `--scenarios` / `--models` replaced the spec\'s own; without them, the report covers '
               'the spec\'s.' if narrowed else ''))


def coverage_text(agg, spec):
    """Planned (the spec's scenarios x models x seeds) against finished runs; None without a spec."""
    coverage = _coverage(agg, spec)
    if coverage is None:
        return None
    planned, missing = coverage
    scenarios, models, seeds, only = _plan(spec)
    restricted = '; '.join(f'{model} on {", ".join(labels)} only' for model, labels in only.items())
    lines = [f'{len(planned) - len(missing)} of {len(planned)} planned runs ({_counted(len(scenarios), "scenario")} x '
             f'{_counted(len(models), "model")} x {_counted(len(seeds), "seed")}'
             + (f'; {restricted}' if restricted else '') + ') are finished.']
    if not agg.stale_checked:
        lines.append('The runs\' inputs were not compared with the current ones (report made from results.jsonl '
                     'alone): `python -m recbole_tmcdr.benchmark --spec SPEC --report-only` leaves out stale runs.')
    if agg.outside_spec:
        lines.append(f'{_counted(agg.outside_spec, "finished run")} outside this spec (other scenarios, models or '
                     'seeds) are not shown.')
    stale = int(missing.isin(list(agg.stale)).sum()) if len(missing) else 0
    if stale:
        lines.append(f'Stale, left out of every table: {_counted(stale, "run")} whose result was made from other '
                     'inputs (a model YAML, the raw data, the code or the spec) than the current ones; they are '
                     'among the missing runs below.')
    if len(missing):
        lines.append('Missing (the command above runs exactly these and keeps the rest):')
        seeds_missing = missing.to_frame(index=False).groupby(['scenario', 'model'], sort=False)['seed'].agg(list)
        all_seeds = sorted(int(s) for s in seeds)
        for scenario, by_model in seeds_missing.groupby(level='scenario', sort=False):
            parts = [model if sorted(ss) == all_seeds
                     else f'{model} ({"seed" if len(ss) == 1 else "seeds"} {", ".join(map(str, ss))})'
                     for (_, model), ss in by_model.items()]
            lines.append(f'- {scenario}: {", ".join(parts)}')
    return '\n'.join(lines)


def split_mismatches(records):
    """(scenario, seed) pairs whose runs recorded different splits (``split_stats``): tests pair runs by seed."""
    splits = {}
    for r in records:
        if r.get('split_stats'):
            splits.setdefault((r['scenario'], int(r['seed'])), set()).add(json.dumps(r['split_stats'], sort_keys=True))
    return sorted(key for key, distinct in splits.items() if len(distinct) > 1)


def header_notes(agg):
    records = agg.records
    seeds = sorted({int(r['seed']) for r in records})
    valid_metrics = sorted({str(r.get('valid_metric', '?')) for r in records})
    overrides = {repr(sorted((r.get('overrides') or {}).items())) for r in records}
    versions = sorted({str(r.get('code_version')) for r in records if r.get('code_version')})
    host_records = [r['host'] for r in records if isinstance(r.get('host'), dict)]
    hosts = sorted({f"{h.get('hostname')} ({h['cpu'] + ', ' if h.get('cpu') else ''}{h.get('cpu_count')} CPUs, "
                    f"torch {h.get('torch')})" for h in host_records})
    cpus = sorted({h['cpu'] for h in host_records if h.get('cpu')})
    lr_search = sorted({bool(r.get('lr_search')) for r in records})
    lines = [f'{len(records)} runs; seeds {seeds}; hyperparameters '
             + ('searched' if lr_search == [True] else 'NOT searched (defaults)' if lr_search == [False]
                else 'searched for some runs only')
             + f' on the cold VALIDATION users ({", ".join(valid_metrics)}); metrics below are on the cold TEST users.']
    if len(overrides) > 1:
        lines.append('**Warning**: the runs were made with different overrides; compare with care.')
    if versions:
        lines.append(f'Code: {", ".join(versions)}. Hosts: {", ".join(hosts)}.')
    differing = split_mismatches(records)
    if differing:
        lines.append(f'**Warning**: runs of one scenario and seed were made on different splits ('
                     f'{", ".join(f"{scenario} seed {seed}" for scenario, seed in differing)}): their paired tests '
                     'compare different users (a split setting such as cold_user_ratio set for some models only).')
    if len(cpus) > 1:
        lines.append(f'**Note**: the runs were made on {len(cpus)} CPU models, whose float rounding differs: a run '
                     'repeated on another CPU model can train differently (same code and config).')
    return '\n'.join(lines)


def _chosen_text(chosen):
    """'douban_music_book: EMCDR_MF; ml_genre: BPR' of a scenario -> model mapping."""
    return '; '.join(f'{scenario}: {model}' for scenario, model in chosen.items() if model) or 'none'


def render_markdown(agg, figures=None, spec=None):
    """The report; ``spec`` (the out dir's spec.yaml) gives its title, notes and the command that made it."""
    figures, spec = figures or {}, spec or {}
    parts = [f"# {spec.get('title') or DEFAULT_TITLE}", '']
    if spec.get('command'):
        parts += ['Made (or resumed to completion) by:', '', '```bash', spec['command'], '```', '']
    interim = interim_text(agg, spec)
    parts += ['## Summary', '', *([interim, ''] if interim else []), verdict_summary(agg), '',
              'BETTER / WORSE: TMCDR_X against its baseline, paired t-test over seeds, Holm-adjusted p < '
              f"{ALPHA} over every TMCDR test of this report ({agg.family_sizes.get('tmcdr', 0)} tests); "
              'Δ = TMCDR - baseline with its 95% CI (not adjusted); n.s.: not '
              f'significant; n/a: fewer than {MIN_PAIRS} common seeds.', '']
    coverage = coverage_text(agg, spec)
    if coverage:
        parts += [coverage, '']
    run_time = run_time_text(agg)
    tested = {scenario: baseline for scenario, baseline in agg.baselines.items()
              if any(s == scenario for s, _ in agg.tests)}
    parts += [header_notes(agg) + (f'\n{run_time}' if run_time else ''), '',
             '## Cold test users: AUC and NDCG@10 (mean ± 95% CI over seeds)', '', main_table(agg), '',
             'AUC = per-user AUC averaged over users (`uauc`). Bold: best mean of the column. '
             f'\\*: paired t-test over seeds (two-sided, at least {MIN_PAIRS} seeds) of a TMCDR model against the '
             f'best other model of the scenario that is not a router ({_chosen_text(tested)}), Holm-adjusted '
             f'p < {ALPHA}; \\*↓: '
             'significantly WORSE than that model. †: negative transfer (a one-sided paired test, Holm-adjusted, '
             f'finds the metric below the best target-only floor: {_chosen_text(agg.floor)}). Both are chosen by their '
             'mean AUC on the cold VALIDATION users'
             + (f' (on the test users for {", ".join(sorted(agg.chosen_on_test))}, whose results lack validation '
                'scores)' if agg.chosen_on_test else '') + '. "(target-only)": a floor that uses no source data.'
             + (' "(beyond the paper)", "(ablation)": a variant of TMCDR_X, compared with TMCDR_X (where it was run) '
                'in its own section.' if any(variant_of(m) for m in agg.models) else ''), '']
    if spec.get('notes'):
        parts += ['## About this run', '', str(spec['notes']).strip(), '']
    tests = tests_table(agg)
    parts += ['## Paired t-tests (TMCDR vs the best other model, chosen on validation AUC)', '',
              tests if tests else 'No TMCDR model with a non-TMCDR baseline in the results.', '']
    comparisons = agg.comparisons
    if comparisons:
        parts += [f'## TMCDR_X vs EMCDR_X (paired t-test over seeds, Holm-adjusted p < {ALPHA})', '',
                  pairs_summary_text(comparisons, agg.family_sizes.get('tmcdr')), '', pairs_table(comparisons), '']
    variants = agg.variant_comparisons
    if variants:
        parts += ['## Variants of TMCDR: beyond the paper and ablations (a Holm family of their own)', '',
                  variants_text(variants, agg.scenarios), '', pairs_table(variants, subject='the variant'), '']
    parts += ['## Negative transfer', '', negative_transfer_text(agg) or 'No scenario.', '']
    parts += ['## Comparison with the paper (Table 1)', '', paper_section(agg), '']
    kshot = kshot_section(agg)
    if kshot:
        parts += ['## K-shot (mean over seeds)', '', kshot, '']
    cold_to_warm = cold_to_warm_section(agg)
    if cold_to_warm:
        parts += ['## Cold to warm: who leads at each K, and the router', '', cold_to_warm, '']
    search = search_section(agg)
    if search:
        parts += ['## Search: grids and choices', '', search, '']
    hyper = hyperparameter_section(agg)
    if hyper:
        parts += ['## Selected hyperparameters', '', '<details><summary>the choice of every searched run, with '
                  'each trial\'s validation score (one row per run in runs.csv)</summary>', '', hyper, '',
                  '</details>', '']
    training = training_section(agg)
    if training:
        parts += ['## Bridge stage (mean over seeds)', '',
                  'The validated stage of each mapping / meta model: best epoch on the cold validation users, epochs '
                  'and optimizer steps run (TMCDR: outer steps), and for TMCDR the inner-step ratio '
                  '||lambda grad L_a|| / ||theta|| at the best epoch.', '', training, '']
    cost = cost_section(agg)
    if cost:
        parts += ['## Cost', '', cost, '']
    figure_lines = [f'![{name}]({os.path.basename(path)})' for name, path in figures.items() if path]
    if figure_lines:
        parts += ['## Figures', '', *figure_lines, '']
    return '\n'.join(parts)


# ----- entry points
REPORT_FILES = ('table_md', 'table_csv', 'runs_csv', 'differences', 'figure1', 'cold_to_warm', 'training')


def written_files(report):
    """The paths of the files :func:`write_report` wrote."""
    return [report[k] for k in REPORT_FILES if report.get(k)]


def _latest_spec(out_dir):
    """``spec.yaml`` of the latest benchmark invocation in ``out_dir`` ({} if none or unreadable)."""
    try:
        import yaml
        with open(os.path.join(out_dir, 'spec.yaml'), encoding='utf-8') as f:
            spec = yaml.safe_load(f) or {}
        return spec if isinstance(spec, dict) else {}
    except (OSError, ValueError):
        return {}


def write_report(out_dir, records=None, scenario_order=None, model_order=None, stale=None, planned=None):
    """Write table.md, table.csv, differences.png, figure1.png, cold_to_warm.png and training.png (those with
    something to show) into ``out_dir``; returns their paths (None: not written) and the Markdown text (``{'markdown',
    'table_md', 'table_csv', 'differences', 'figure1', 'cold_to_warm', 'training', 'aggregate'}``). ``stale``: the
    (scenario, model, seed) whose last record was made from other inputs than the spec's now; they are left out
    of every table and listed in the coverage section (None: not checked, as when the report is made from
    results.jsonl alone). ``planned``: the spec's (scenario, model, seed); other records are left out."""
    if records is None:
        records = load_records(os.path.join(out_dir, RESULTS_FILE))
    checked = stale is not None
    stale = sorted(set(stale or ()))
    outside = 0
    if records and (stale or planned is not None):
        records = latest_records(records)
        kept = [r for r in records if planned is None or run_key(r) in planned]
        outside = len(records) - len(kept)
        records = [r for r in kept if run_key(r) not in set(stale)]
        if not records:
            raise FileNotFoundError(f'Every finished run in {out_dir} is stale (made from other inputs than now): '
                                    'nothing to report; run the benchmark without --report-only to redo them.')
    if not records:
        raise FileNotFoundError(f'No finished run in {os.path.join(out_dir, RESULTS_FILE)}: nothing to report.')
    spec = _latest_spec(out_dir)
    if scenario_order is None and model_order is None:
        scenario_order, model_order = spec.get('scenario_labels') or [], spec.get('models') or []
    agg = aggregate(records, scenario_order=scenario_order, model_order=model_order)
    agg.stale, agg.stale_checked, agg.outside_spec = stale, checked, outside
    from recbole_tmcdr.benchmark.figures import plot_figure1, plot_kshot, plot_pair_differences, plot_training_curves
    figures = {'TMCDR_X - baseline': plot_pair_differences(agg, os.path.join(out_dir, 'differences.png')),
               'Figure 1': plot_figure1(agg, os.path.join(out_dir, 'figure1.png')),
               'Cold to warm': plot_kshot(agg, os.path.join(out_dir, 'cold_to_warm.png')),
               'Training curves': plot_training_curves(agg, os.path.join(out_dir, 'training.png'))}
    markdown = render_markdown(agg, figures, spec)
    paths = {'table_md': os.path.join(out_dir, 'table.md'), 'table_csv': os.path.join(out_dir, 'table.csv'),
             'runs_csv': os.path.join(out_dir, 'runs.csv')}
    with open(paths['table_md'], 'w', encoding='utf-8') as f:
        f.write(markdown)
    write_csv(agg, paths['table_csv'])
    write_runs_csv(agg, paths['runs_csv'])
    return {'markdown': markdown, **paths, 'differences': figures['TMCDR_X - baseline'], 'figure1': figures['Figure 1'],
            'cold_to_warm': figures['Cold to warm'], 'training': figures['Training curves'], 'aggregate': agg}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m recbole_tmcdr.benchmark.report',
                                     description='Tables and figures of a benchmark directory (its results.jsonl).')
    parser.add_argument('out', help='benchmark output directory (holding results.jsonl)')
    parser.add_argument('--quiet', action='store_true', help="don't print the Markdown report")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.out)
    except FileNotFoundError as error:
        parser.exit(1, f'{error}\n')
    if not args.quiet:
        print(report['markdown'])
    print(f"written: {', '.join(written_files(report))}", file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
