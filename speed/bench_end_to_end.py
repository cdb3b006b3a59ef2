"""Figure 5: end to end, TMCDR_MF against EMCDR_MF with the pre-trained embeddings cached.

Three ``run_recbole_cdr`` runs in this process on the same split, with a FRESH embedding cache:
EMCDR_MF (pre-trains source and target and caches them), TMCDR_MF, EMCDR_MF again. The two later runs
must reuse the cache (their pre-training phases take ~0 s and their logs say "Reusing pre-trained
embeddings"); the figure is TMCDR_MF's total time over the second EMCDR_MF's, a measurement without a target
(it counts the epochs each model needs to reach its best cold-validation score, a modelling matter: see
README.md). Total = config + data +
model + fit + test evaluation, i.e. the whole ``run_recbole_cdr`` call. Phase times (data, pre-training, bridge,
validation, test) are measured by wrapping the trainer's methods (the package is not modified).
"""

import logging
import re
import time
from contextlib import contextmanager

from speed.common import NO_TARGET, Figure

REUSE_MESSAGE = 'Reusing pre-trained embeddings'
ANSI = re.compile(r'\x1b\[[0-9;]*m')
BRIDGE_EPOCH = re.compile(r'^epoch \d+ training')


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(ANSI.sub('', record.getMessage()))


TIMED_METHODS = ('_pretrain_phase', 'fit', '_valid_epoch', 'evaluate')


@contextmanager
def phase_timer(phase_seconds):
    """Wrap ColdStartTrainer's methods to time the phases of the runs inside the block: SOURCE / TARGET = their
    ``_pretrain_phase``; fit = the whole of ``fit``; validation = ``_valid_epoch`` (RecBole's evaluation of the
    cold validation users, per validated epoch); evaluate = every ``evaluate`` (validation and test)."""
    from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer
    owned = {name: vars(ColdStartTrainer).get(name) for name in TIMED_METHODS}
    resolved = {name: getattr(ColdStartTrainer, name) for name in TIMED_METHODS}

    def timed(name):
        def wrapper(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return resolved[name](self, *args, **kwargs)
            finally:
                key = args[1].value if name == '_pretrain_phase' else 'validation' if name == '_valid_epoch' else name
                phase_seconds[key] = phase_seconds.get(key, 0.0) + time.perf_counter() - start
        return wrapper

    for name in TIMED_METHODS:
        setattr(ColdStartTrainer, name, timed(name))
    try:
        yield
    finally:
        for name, fn in owned.items():
            if fn is None:
                delattr(ColdStartTrainer, name)
            else:
                setattr(ColdStartTrainer, name, fn)


def timed_run(model, dataset, config_files, config):
    """``run_recbole_cdr`` with its log captured and its phases timed. Returns the result, the log messages and the
    seconds of: data (config, scenario, datasets, loaders, model), SOURCE / TARGET pre-training, OVERLAP (the
    rest of training: the bridge or meta stage's; a joint or RecBole general model's whole training), validation
    (its per-epoch evaluations), test (the final evaluation)."""
    from recbole_tmcdr import run_recbole_cdr
    capture = LogCapture()
    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    # Our handler first: RecBole's init_logger (logging.basicConfig) then adds no console/file handler.
    for handler in old_handlers:
        root.removeHandler(handler)
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    phases = {}
    start = time.perf_counter()
    try:
        with phase_timer(phases):
            result = run_recbole_cdr(model=model, dataset=dataset, config_file_list=config_files, config_dict=config,
                                     saved=False)
    finally:
        total = time.perf_counter() - start
        root.removeHandler(capture)
        for handler in old_handlers:
            root.addHandler(handler)
        root.setLevel(old_level)
    fit, validation = phases.pop('fit', 0.0), phases.get('validation', 0.0)
    pretrain = phases.get('SOURCE', 0.0) + phases.get('TARGET', 0.0)
    test = phases.pop('evaluate', 0.0) - validation
    phases.update(OVERLAP=fit - pretrain - validation, test=test, data=total - fit - test)
    return result, capture.messages, total, phases


def run_model(ctx, model, cache_dir, dataset=None, **overrides):
    """One timed run on the suite's scenario, or on the named ``dataset`` (a full run only)."""
    from speed.common import QUIET
    config = dict(ctx.setup.overrides)
    config.update(QUIET, state='INFO', cache_dir=str(cache_dir), **overrides)
    config_files = [] if dataset else ctx.setup.config_files
    result, messages, total, phases = timed_run(model, dataset or ctx.setup.dataset, config_files, config)
    reuse_lines = [m for m in messages if REUSE_MESSAGE in m]
    epochs = sum(1 for m in messages if BRIDGE_EPOCH.match(m))
    return {'total_s': round(total, 2), 'phases_s': {k: round(v, 2) for k, v in phases.items()},
            'pretrain_s': round(phases.get('SOURCE', 0.0) + phases.get('TARGET', 0.0), 2),
            'reused_pretraining': len(reuse_lines), 'reuse_log': reuse_lines[:2],
            'bridge_epochs_logged': epochs,
            'test_ndcg@10': float(result['test_result'].get('ndcg@10', float('nan')))}


def run(ctx):
    cache_dir = ctx.workdir / 'e2e_cache'
    runs = {}
    for label, model in (('EMCDR_MF (cold cache)', 'EMCDR_MF'), ('TMCDR_MF (cached)', 'TMCDR_MF'),
                         ('EMCDR_MF (cached)', 'EMCDR_MF')):
        runs[label] = run_model(ctx, model, cache_dir)
    first, tmcdr, emcdr = (runs[k] for k in runs)
    ratio = tmcdr['total_s'] / emcdr['total_s']
    reused = tmcdr['reused_pretraining'] == 2 and emcdr['reused_pretraining'] == 2 and first['reused_pretraining'] == 0
    details = {'runs': runs,
               'pre-training shared': f"first run pre-trains in {first['pretrain_s']} s; TMCDR_MF's pre-training "
                                      f"phases take {tmcdr['pretrain_s']} s ({tmcdr['reused_pretraining']} reuse lines)"}
    return [
        Figure('5a', 'end to end: TMCDR_MF total / EMCDR_MF total (embeddings cached)', ratio, 'x', NO_TARGET, None,
               details),
        Figure('5b', "pre-training phases of the 2nd model (reused from the 1st run's cache)", tmcdr['pretrain_s'],
               ' s', f"~0 s (1st run: {first['pretrain_s']} s), log says reused", reused and tmcdr['pretrain_s'] < max(
                   1.0, 0.05 * first['pretrain_s']), details),
    ]
