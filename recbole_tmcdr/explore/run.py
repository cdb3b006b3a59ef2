"""Simulate every (policy, prior) on every (scenario, seed) and keep one result file per (scenario, seed).

``<out>/runs/<scenario>-seed<seed>.json`` holds, per policy and prior, the cold test users' mean cumulative
hits and regret after each round and the policy's computing time, with the inputs' description and costs. A
file whose ``inputs_hash`` matches the current settings and code is kept (resume); ``force`` redoes it.
"""

import hashlib
import itertools
import json
import os
from logging import getLogger
from pathlib import Path
from time import perf_counter

import torch

from recbole_tmcdr.explore.policies import POLICIES
from recbole_tmcdr.explore.problem import build_problem
from recbole_tmcdr.explore.settings import explore_params
from recbole_tmcdr.explore.simulation import simulate

# Modules that only present finished results: editing them keeps every result file.
PRESENTATION_MODULES = ('report.py', 'figures.py', '__main__.py')
RESULT_FORMAT = 1
# Settings that change what the report shows, not what a run computes.
REPORT_ONLY_SETTINGS = ('report_rounds', 'notes', 'seeds', 'threads')


def explore_code_sha():
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob('*.py')):
        if path.name not in PRESENTATION_MODULES:
            digest.update(path.name.encode() + b'\0' + path.read_bytes())
    return digest.hexdigest()[:16]


def result_settings(settings):
    """The settings a (scenario, seed) result depends on (not the report's, nor the models' logging)."""
    from recbole_tmcdr.benchmark.inputs import NON_RESULT_KEYS
    kept = {k: v for k, v in sorted(settings.items()) if k not in REPORT_ONLY_SETTINGS}
    kept['model_settings'] = {k: v for k, v in sorted(kept['model_settings'].items()) if k not in NON_RESULT_KEYS}
    return kept


def inputs_hash(scenario, seed, settings):
    from recbole_tmcdr.benchmark.inputs import code_sha
    payload = {'format': RESULT_FORMAT, 'scenario': scenario.content_sha, 'seed': seed,
               'settings': result_settings(settings),
               'explore_code': explore_code_sha(), 'plugin_code': code_sha()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def streams(settings):
    """(policy, prior) pairs to simulate: a prior-using policy once per prior, the others once (prior None)."""
    priors = (['no_transfer'] if settings['no_transfer_prior'] else []) + list(settings['models'])
    pairs = []
    for name in settings['policies']:
        pairs += [(name, prior) for prior in priors] if POLICIES.get(name).uses_prior else [(name, None)]
    return pairs


def run_stream(problem, name, prior, settings, seed, chosen=None):
    return simulate(problem, POLICIES.get(name), rounds=settings['rounds'], slate_size=settings['slate_size'],
                    cohort_size=settings['cohort_size'], prior=prior,
                    params=explore_params({**settings, **(chosen or {})}), seed=seed)


def choose_on_validation(valid_problem, name, prior, settings, seed):
    """The candidate values of the policy's searched settings with the most cumulative hits at the last round on
    the cold validation users (the first of equals), and every candidate's score."""
    search = settings['search'] or {}
    keys = [key for key in POLICIES.get(name).params if key in search]
    if not keys:
        return {}, []
    scores = []
    for values in itertools.product(*(search[key] for key in keys)):
        candidate = dict(zip(keys, values))
        trajectory = run_stream(valid_problem, name, prior, settings, seed, candidate)
        scores.append((float(trajectory.cumulative_hits()[:, -1].double().mean()), candidate))
    best = max(range(len(scores)), key=lambda i: (scores[i][0], -i))
    return scores[best][1], [{'valid_hits': score, **candidate} for score, candidate in scores]


def simulate_all(test_problem, valid_problem, settings, seed):
    """{'policy|prior': curves, timing and the settings chosen on validation} for every stream of ``settings``."""
    results = {}
    for name, prior in streams(settings):
        chosen, candidates = choose_on_validation(valid_problem, name, prior, settings, seed)
        trajectory = run_stream(test_problem, name, prior, settings, seed, chosen)
        results[f'{name}|{prior or "-"}'] = {
            'policy': name, 'prior': prior, 'chosen': chosen, 'candidates': candidates,
            'hits': trajectory.cumulative_hits().double().mean(0).tolist(),
            'regret': trajectory.regret().double().mean(0).tolist(),
            'policy_seconds': trajectory.policy_seconds, 'decisions': trajectory.decisions,
        }
    return results


def run_file(out_dir, scenario, seed):
    return Path(out_dir) / 'runs' / f'{scenario.label}-seed{seed}.json'


def run_one(scenario, seed, settings, out_dir, command='', force=False, cache_dir=None):
    """The result of (scenario, seed): read from its file when its inputs are unchanged, else computed and written."""
    path = run_file(out_dir, scenario, seed)
    expected = inputs_hash(scenario, seed, settings)
    if path.is_file() and not force:
        record = json.loads(path.read_text())
        if record.get('inputs_hash') == expected:
            getLogger().info(f'{scenario.label} seed {seed}: unchanged, kept {path}')
            return record
    start = perf_counter()
    test_problem, valid_problem, info = build_problem(scenario, seed, settings, cache_dir)
    sim_start = perf_counter()
    streams_result = simulate_all(test_problem, valid_problem, settings, seed)
    record = {
        'scenario': scenario.label, 'seed': seed, 'inputs_hash': expected, 'command': command,
        'settings': {k: v for k, v in settings.items() if k != 'notes'}, 'problem': vars(info),
        'seconds': {'models': info.seconds, 'simulation': perf_counter() - sim_start, 'total': perf_counter() - start},
        'threads': torch.get_num_threads(), 'streams': streams_result,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return record
