"""Figure 8: a joint baseline's run against EMCDR_MF's run with a cold cache, same scenario and seed.

CMF trains one user table with both domains' item tables in one BOTH phase, validated on the cold users every
epoch; EMCDR_MF pre-trains a source and a target model (cold cache: it pre-trains both) and then fits its
mapping. Each side is a whole ``run_recbole_cdr`` call (see bench_end_to_end.py), alternated EMCDR_MF, CMF,
EMCDR_MF, CMF with a fresh pre-training cache for every run, each side's time its minimum. Target (issue 22):
no baseline run costs more than 3x EMCDR_MF's. Figure 8 runs on the suite's scenario; 8b on Amazon sport ->
cloth at the results table's embedding size (64), where CMF's tables are largest (one round: a CMF run there
takes ~10-20 min; each run converts the scenario into its fresh cache, a cost both sides pay); the quick run
makes 8b on its tiny scenario.

Figures 8b-8e compare each baseline that costs more than EMCDR_MF on Amazon (CMF, RecBole's LightGCN floor,
BPR_merged, CML_merged: the others took under a third of EMCDR_MF's time in the d=64 table) with one EMCDR_MF run,
made once per ``run_all.py`` call for whichever of them it runs (``--only 8c`` runs EMCDR_MF and LightGCN).
"""

from speed.bench_end_to_end import run_model
from speed.common import Figure

LIMIT = 3.0
# the quick run's tiny schedule (the full run uses each model's defaults)
QUICK_PHASES = {'CMF': ["BOTH:2"], 'LightGCN': ["TARGET:2"], 'BPR_merged': ["BOTH:2"], 'CML_merged': ["BOTH:2"]}
AMAZON_BASELINES = {'8b': 'CMF', '8c': 'LightGCN', '8d': 'BPR_merged', '8e': 'CML_merged'}
AMAZON = 'amazon_sport_cloth'
AMAZON_SETTINGS = {'embedding_size': 64}


def compare(ctx, group, labels, rounds, dataset=None, **settings):
    """``labels``: figure key -> baseline model; one Figure per baseline against the same EMCDR_MF runs (made once
    per ``group`` of figures and round in a ``run_all.py`` call, so the group's figures run apart share them)."""
    runs = {'EMCDR_MF': [], **{model: [] for model in labels.values()}}
    for round_idx in range(rounds):
        for model in runs:
            overrides = {'train_epochs': QUICK_PHASES[model]} if ctx.quick and model in QUICK_PHASES else {}
            cache = ctx.workdir / f'joint_cache_{group}_{model}_{round_idx}'
            key = ('joint', group, model, round_idx)
            runs[model].append(ctx.once(key, lambda: run_model(ctx, model, cache, dataset=dataset, **settings,
                                                               **overrides)))
    best = {model: min(r['total_s'] for r in model_runs) for model, model_runs in runs.items()}
    where = f' on {dataset} (d={settings["embedding_size"]})' if dataset else ''
    figures = []
    for label, model in labels.items():
        ratio = best[model] / best['EMCDR_MF']
        details = {'seconds (min over rounds)': {m: best[m] for m in ('EMCDR_MF', model)},
                   'scenario': dataset or "the suite's", 'settings': settings,
                   'runs': {m: [{key: r[key] for key in ('total_s', 'phases_s', 'bridge_epochs_logged', 'test_ndcg@10')}
                                for r in runs[m]] for m in ('EMCDR_MF', model)}}
        figures.append(Figure(label, f'joint baseline run: {model} total / EMCDR_MF total (cold cache), same seed{where}',
                              ratio, 'x', f'<= {LIMIT}x', ratio <= LIMIT, details))
    return figures


def run(ctx):
    return compare(ctx, '8', {'8': 'CMF'}, ctx.rounds(2))


def run_amazon(ctx, label):
    """Figure ``label`` of 8b-8e (each its own entry in run_all.py: an error in one leaves the others standing)."""
    return compare(ctx, 'amazon', {label: AMAZON_BASELINES[label]}, 1,
                   **({} if ctx.quick else {'dataset': AMAZON, **AMAZON_SETTINGS}))
