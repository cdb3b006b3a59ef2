"""What a benchmark runs: the spec (scenarios x models x seeds + overrides; each model's search grid:
:mod:`.search_space`; the ``config_hash`` that decides whether a finished line of ``results.jsonl`` still counts:
:mod:`.inputs`).

A spec comes from a YAML file (``--spec``), the command line, or both (the command line wins field by field;
``overrides`` and ``imports`` are merged). Spec file fields::

    scenarios: [ml_genre, douban_music_book, path/to/my_scenario.yaml]
    models: [TargetPop, EMCDR_MF, TMCDR_MF, EMCDRHuber]
    imports: [my_emcdr]                   # modules that register models of your own (also in every worker)
    seeds: [0, 1, 2]
    overrides: {embedding_size: 256}      # config_dict of every run (same as --key=value)
    config_files: []                      # extra RecBole YAML files of every run, after the scenario's (a key
                                          # they set is not searched, as for overrides)
    jobs: 2                               # local worker processes
    threads: 1                            # torch threads per run (default cpu_count // jobs)
    lr_search: true                       # grid search on the cold VALIDATION score; false = one run, defaults
    search_space:                         # replaces a model's `benchmark_search_space` (from its YAML)
      TMCDR_MF: {learning_rate: [0.001, 0.01], meta_inner_lr: [0.005]}
    kshot: [0, 1, 3, 5, 10]               # K-shot evaluation of the cold test users
    only: {ContentGenre: [ml_genre]}      # models run on some scenarios only (names or files as in `scenarios`);
                                          # the other pairs are neither planned nor counted missing
    cache_dir: ~                          # shared pre-trained embeddings / prepared scenarios
    out: runs/benchmark
    ray_address: ~                        # run the runs as Ray tasks (e.g. auto, local, ray://host:10001)
    title: ~                              # the report's title (default: Cold-start cross-domain benchmark)
    notes: ~                              # Markdown printed under the title (what the run is and is not)
"""

import copy
import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from recbole_tmcdr.config import SafeConfigLoader

# Keys the benchmark itself sets for every run.
RESERVED_KEYS = frozenset({'seed', 'model', 'dataset'})

INFORMATIONAL_FIELDS = ('scenario_labels', 'command', 'narrowed_from')


class SpecError(ValueError):
    """An invalid benchmark spec (unknown scenario/model, bad field)."""


def load_yaml(text_or_path):
    if isinstance(text_or_path, Path) or (isinstance(text_or_path, str) and '\n' not in text_or_path
                                          and os.path.isfile(text_or_path)):
        with open(text_or_path, encoding='utf-8') as f:
            text_or_path = f.read()
    return yaml.load(text_or_path, Loader=SafeConfigLoader)


@dataclass
class Scenario:
    """A scenario of the benchmark: a ``dataset_configs`` name or a scenario YAML file."""
    label: str                  # names the results and the run directories
    dataset: str = None         # a dataset_configs/ name, or
    config_file: str = None     # an absolute path to a scenario YAML
    content_sha: str = ''

    def run_kwargs(self):
        if self.dataset:
            return {'dataset': self.dataset, 'config_file_list': []}
        return {'dataset': None, 'config_file_list': [self.config_file]}

    def source(self):
        return self.dataset or self.config_file

    def path(self):
        from recbole_tmcdr.config import dataset_config_file
        return dataset_config_file(self.dataset) if self.dataset else self.config_file


def file_sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def resolve_scenario(value):
    """A dataset_configs name (``ml_genre``) or a path to a scenario YAML (``*.yaml``/``*.yml`` or any existing
    file)."""
    from recbole_tmcdr.config import dataset_config_file, scenario_name
    value = str(value)
    if value.endswith(('.yaml', '.yml')) or os.path.sep in value or os.path.isfile(value):
        path = os.path.abspath(os.path.expanduser(value))
        if not os.path.isfile(path):
            raise SpecError(f"Scenario file '{value}' does not exist.")
        content = load_yaml(Path(path)) or {}
        scenario = content.get('scenario') if isinstance(content, dict) else None
        label = scenario_name(scenario) if isinstance(scenario, dict) and scenario.get('name') else Path(path).stem
        return Scenario(label=label, config_file=path, content_sha=file_sha(path))
    try:
        path = dataset_config_file(value)
    except ValueError as error:  # RegistryError: unknown name, with the list of known ones
        raise SpecError(f'{error} A scenario may also be the path of a scenario YAML file.') from None
    return Scenario(label=value, dataset=value, content_sha=file_sha(path))


def check_model(name):
    from recbole_tmcdr.registry import MODELS
    if name not in MODELS:
        raise SpecError(MODELS.unknown_message(name))
    return name


# ----- the spec
@dataclass
class BenchmarkSpec:
    scenarios: list = field(default_factory=list)
    models: list = field(default_factory=list)
    imports: list = field(default_factory=list)
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    overrides: dict = field(default_factory=dict)
    config_files: list = field(default_factory=list)
    jobs: int = None
    threads: int = None
    lr_search: bool = True
    search_space: dict = field(default_factory=dict)
    kshot: list = None
    only: dict = field(default_factory=dict)
    cache_dir: str = None
    out: str = 'runs/benchmark'
    ray_address: str = None
    force: bool = False
    title: str = None   # report only: neither field changes a result
    notes: str = None
    # set by updated(): the spec's own models / scenarios a command line narrowed (not a field of a spec file)
    narrowed_from: dict = field(default_factory=dict, repr=False, compare=False)

    FIELDS = ('scenarios', 'models', 'imports', 'seeds', 'overrides', 'config_files', 'jobs', 'threads',
              'lr_search', 'search_space', 'kshot', 'only', 'cache_dir', 'out', 'ray_address', 'force', 'title',
              'notes')

    @classmethod
    def from_file(cls, path):
        content = load_yaml(Path(path)) or {}
        if not isinstance(content, dict):
            raise SpecError(f"Spec file '{path}' must hold a mapping of fields ({', '.join(cls.FIELDS)}).")
        for key in INFORMATIONAL_FIELDS:  # written by the runner into <out>/spec.yaml; not an input
            content.pop(key, None)
        unknown = sorted(set(content) - set(cls.FIELDS))
        if unknown:
            raise SpecError(f"Spec file '{path}': unknown field(s) {', '.join(unknown)}. "
                            f"Known fields: {', '.join(cls.FIELDS)}.")
        spec = cls(**{k: copy.deepcopy(v) for k, v in content.items() if v is not None or k in ('kshot',)})
        base = os.path.dirname(os.path.abspath(path))
        # relative scenario / config files in a spec are relative to the spec file
        spec.scenarios = [_relative_to(base, s) for s in spec.scenarios]
        spec.only = {model: [_relative_to(base, s) for s in ([names] if isinstance(names, str) else names or [])]
                     for model, names in (spec.only or {}).items()}
        spec.config_files = [_relative_to(base, f, must_exist=True) for f in spec.config_files]
        return spec

    def updated(self, **fields):
        """A copy with the given fields replaced (``None`` = keep); ``overrides`` are merged key by key, ``imports``
        extended."""
        spec = copy.deepcopy(self)
        for key, value in fields.items():
            if value is None:
                continue
            if key in ('models', 'scenarios'):  # a subset of the spec's: `only` may still name the others
                spec.narrowed_from.setdefault(key, list(getattr(self, key)))
            if key == 'overrides':
                spec.overrides.update(value)
            elif key == 'imports':
                spec.imports += [module for module in value if module not in spec.imports]
            else:
                setattr(spec, key, value)
        return spec

    def validate(self):
        if not self.scenarios:
            raise SpecError('No scenario given: use --scenarios NAME_OR_YAML ... or `scenarios:` in the spec.')
        if not self.models:
            raise SpecError('No model given: use --models NAME ... or `models:` in the spec.')
        if not self.seeds:
            raise SpecError('No seed given: use --seeds 0 1 2 or `seeds:` in the spec.')
        for key in RESERVED_KEYS & set(self.overrides):
            raise SpecError(f"'{key}' cannot be an override: the benchmark sets it "
                            f"({'use --seeds' if key == 'seed' else 'use --scenarios / --models'}).")
        try:
            self.seeds = [int(s) for s in self.seeds]
        except (TypeError, ValueError):
            raise SpecError(f'Seeds must be integers. Got {self.seeds!r}.') from None
        if len(set(self.seeds)) != len(self.seeds):
            raise SpecError(f'Duplicate seeds: {self.seeds}.')
        from recbole_tmcdr.registry import RegistryError, import_modules
        try:
            import_modules(self.imports)
        except RegistryError as error:
            raise SpecError(str(error)) from error
        for model in self.models:
            check_model(model)
        scenarios = self.scenarios + [s for s in self.narrowed_from.get('scenarios', []) if s not in self.scenarios]
        labels = {str(s): resolve_scenario(s).label for s in scenarios}
        self.only = {model: self._only_labels(model, names, labels) for model, names in (self.only or {}).items()
                     if model in self.models or model not in self.narrowed_from.get('models', [])}
        for model in self.search_space or {}:
            check_model(model)
        if self.jobs is not None and int(self.jobs) < 1:
            raise SpecError(f'jobs must be >= 1. Got {self.jobs}.')
        if self.kshot is not None:
            self.kshot = [int(k) for k in self.kshot]
        return self

    def _only_labels(self, model, names, labels):
        """The scenario labels ``only`` allows ``model`` on (given as in ``scenarios``, or as their labels)."""
        if model not in self.models:
            raise SpecError(f"only: '{model}' is not one of the spec's models ({', '.join(self.models)}).")
        names = [names] if isinstance(names, str) else names
        unknown = [n for n in names or [] if str(n) not in labels and str(n) not in labels.values()]
        if not names or unknown:
            raise SpecError(f"only: {model} must list some of the spec's scenarios ({', '.join(labels.values())}). "
                            f'Got {unknown or names!r}.')
        return [labels.get(str(n), str(n)) for n in names]

    def runs_on(self, model, label):
        """Whether ``model`` runs on the scenario labelled ``label`` (``only``)."""
        return model not in self.only or label in self.only[model]

    def as_dict(self):
        return {key: value for key, value in asdict(self).items() if key != 'narrowed_from'}


def _relative_to(base, value, must_exist=False):
    value = str(value)
    looks_like_path = value.endswith(('.yaml', '.yml')) or os.path.sep in value
    if looks_like_path and not os.path.isabs(value):
        candidate = os.path.join(base, value)
        if os.path.exists(candidate) or must_exist:
            return candidate
    return value


def absolute_path_overrides(overrides):
    """Workers run in their own directory: make path-valued overrides absolute."""
    overrides = dict(overrides)
    for key in ('raw_data_path', 'cache_dir'):
        if isinstance(overrides.get(key), str):
            overrides[key] = os.path.abspath(os.path.expanduser(overrides[key]))
    return overrides


def set_in_files(config_files):
    """The keys the YAML ``config_files`` set, later files overriding earlier ones (as RecBole merges them)."""
    merged = {}
    for path in config_files:
        content = load_yaml(Path(path))
        if not isinstance(content, dict):  # RecBole would fail on it in every run (dict.update of a non-mapping)
            raise SpecError(f"Config file '{path}' holds no `key: value` mapping (got {type(content).__name__}): "
                            'give it the settings it is meant to set, or leave it out.')
        merged.update(content)
    return merged


def defaults_unless_set(defaults, config_files):
    """The benchmark's ``defaults`` (e.g. ``raw_data_path``), each replaced by the value the run's config files
    (its scenario file first, as RecBole merges them) set, made absolute like the overrides. A run's config_dict
    outranks its files, so a default passed there would silently override the scenario's own value."""
    files = set_in_files(config_files)
    chosen = {key: files[key] for key in defaults if files.get(key) is not None}
    return {**defaults, **absolute_path_overrides(chosen)}
