"""What a finished result depends on, hashed: the ``config_hash`` that decides whether a line of ``results.jsonl``
still counts (resume), and the hashes of the code and of the files a run reads, which the caches and the workers
compare too (the pre-training cache, stored trained models, a worker's check of the inputs it was planned with).
"""

import hashlib
import json
import os
import uuid
from pathlib import Path

from recbole_tmcdr.benchmark.spec import file_sha, load_yaml

# Bump when the record's schema or the meaning of its fields changes: every finished run is then stale.
HASH_VERSION = 2
# Keys that change where things are written or how much is printed, never a result: not in config_hash.
NON_RESULT_KEYS = frozenset({'cache_dir', 'show_progress', 'state', 'checkpoint_dir', 'log_wandb', 'gpu_id',
                             'store_trained_models'})
# Where the raw data lie: config_hash holds their contents instead (run_inputs), so moving them keeps the results.
LOCATION_KEYS = frozenset({'raw_data_path'})


def config_hash(scenario, model, overrides, config_files_sha, trials, kshot, inputs=None):
    """What determines a (scenario, model, seed) result: the scenario's file, the overrides (without
    :data:`NON_RESULT_KEYS`), extra config files, the trials of the search and K-shot, plus ``inputs``: the
    contents that resume must also compare (:func:`run_inputs`: every YAML layer of the model, the raw data
    files, the code)."""
    payload = {
        'version': HASH_VERSION,
        'scenario': scenario.content_sha,
        'model': model,
        'overrides': {k: v for k, v in sorted(overrides.items()) if k not in NON_RESULT_KEYS | LOCATION_KEYS},
        'config_files': list(config_files_sha),
        'trials': trials,
        'kshot': list(kshot) if kshot else None,
        'inputs': inputs,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def raw_data_sha(scenario, raw_data_path, block=None):
    """sha256 of every raw file the scenario reads from ``raw_data_path`` (the run's, after the scenario file's
    own value; the converter's list of files; memoised per file). ``block``: the ``scenario:`` block the run uses
    when a config file or an override replaces the scenario file's own."""
    from recbole_tmcdr.data import ScenarioDataError, file_sha256, scenario_raw_files
    if block is None:
        content = load_yaml(Path(scenario.path())) or {}
        block = content.get('scenario') if isinstance(content, dict) else None
    if not block:
        return []
    try:
        return [file_sha256(f) for f in scenario_raw_files(block, raw_data_path)]
    except ScenarioDataError as error:  # e.g. --report-only on a machine that holds the results only
        return [f'missing: {error}']


_CODE_SHA = {}
# Modules that only read finished results: changing them leaves every result valid.
REPORT_ONLY_SOURCES = frozenset({'benchmark/report.py', 'benchmark/aggregate.py', 'benchmark/sections.py',
                                 'benchmark/run_sections.py', 'benchmark/cold_to_warm.py', 'benchmark/figures.py',
                                 'benchmark/stats.py', 'benchmark/paper.py', 'benchmark/display.py', 'cli.py'})
# Packages that only use trained models (the exploration simulation): no training result depends on them.
NON_TRAINING_PACKAGES = ('explore/',)


def code_sha(fresh=False):
    """sha256 over the plugin's source that can change a result (everything but the report's modules), and the
    versions of the toolkit and of the libraries that compute with it; ``fresh``: read the files again (not
    this process's first reading)."""
    if fresh or 'sha' not in _CODE_SHA:
        from recbole_tmcdr.cache import sources_sha
        from recbole_tmcdr.config import PACKAGE_DIR
        _CODE_SHA['sha'] = sources_sha(
            PACKAGE_DIR, ('recbole', 'recbole-cdr', 'torch', 'numpy', 'pandas', 'scipy'),  # training, reading, splits
            keep=lambda relative: relative not in REPORT_ONLY_SOURCES and not relative.startswith(NON_TRAINING_PACKAGES))
    return _CODE_SHA['sha']


TOOLKIT_PACKAGES = frozenset({'recbole_tmcdr', 'recbole_cdr', 'recbole', 'torch', 'builtins'})


def own_classes(classes):
    """The classes and their bases that come from outside the plugin and the toolkit (code of your own:
    ``--import``, an entry point)."""
    return [base for cls in classes for base in cls.__mro__ if base.__module__.split('.')[0] not in TOOLKIT_PACKAGES]


def own_sources(classes):
    """Source files of :func:`own_classes`; None when one has no file (typed into an interpreter): such code
    cannot be keyed by its content."""
    import inspect
    files = set()
    for cls in own_classes(classes):
        try:
            path = inspect.getsourcefile(cls)
        except (TypeError, OSError):
            path = None
        if path is None or not os.path.isfile(path):
            return None
        files.add(path)
    return sorted(files)


def code_and_yaml_sha(model, fresh=False):
    """The model's YAML layers, the code and a model or trainer of your own by its source (:func:`run_inputs`
    without the raw data): cheap enough for a worker to check, when it starts and ends a run, that they are still
    those the run was planned with."""
    from recbole_tmcdr.config import plugin_yaml_files
    inputs = {'model_yaml': [file_sha(f) for f in plugin_yaml_files(model)], 'code': code_sha(fresh)}
    sources = own_model_sources(model)
    if sources:  # only then: the hashes of the plugin's own models stay as they were
        inputs['user_code'] = [file_sha(f) for f in sources]
    return inputs


def own_model_sources(model):
    """Source files of the model's and its trainer's classes of your own (:func:`own_sources`)."""
    from recbole_tmcdr.registry import MODELS, RegistryError, get_trainer
    try:
        trainer = [get_trainer(None, model)]
    except RegistryError:  # its run says so; planning goes on
        trainer = []
    return own_sources([MODELS.get(model)] + trainer)


def named_file_contents(settings):
    """The settings that name an existing file (e.g. ``content_item_file``), with the sha256 of its content: an
    edited file at the same path is another input (:func:`~recbole_tmcdr.trained_models.with_file_contents`)."""
    from recbole_tmcdr.trained_models import with_file_contents
    named = {key: with_file_contents(value) for key, value in sorted(settings.items())
             if key not in NON_RESULT_KEYS and key != 'scenario'}  # the scenario's files: raw_data_sha
    return {key: value for key, value in named.items() if value != settings[key]}


def run_inputs(scenario, model, raw_data_path, block=None):
    """Contents a finished run depends on beyond the spec: the model's YAML layers (the plugin's overall.yaml
    and the model's files), the raw data (of the ``scenario:`` block the run uses: :func:`raw_data_sha`) and the
    code (with the source of a model of your own)."""
    inputs = {**code_and_yaml_sha(model), 'raw_data': raw_data_sha(scenario, raw_data_path, block)}
    if own_model_sources(model) is None:  # code without a file: a finished run of it can never be shown current
        inputs['user_code'] = [f'no source file, never reused ({uuid.uuid4().hex})']
    return inputs
