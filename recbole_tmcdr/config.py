"""How the plugin's YAML and scenarios enter RecBole-CDR's ``CDRConfig``.

Precedence is the toolkit's: recbole-cdr's overall.yaml < the plugin's ``properties/overall.yaml`` <
the model's YAML (``properties/model/<Implementation>.yaml`` < ``<Alias>.yaml``) < a scenario file from
``dataset_configs/`` < the user's config files < ``config_dict`` < command line.

A config holding a ``scenario:`` dict (every file in ``dataset_configs/`` does) is turned into RecBole-CDR
atomic files with the cold-start split before the toolkit resolves its data paths; the source/target
domains then point at those files (target: ``benchmark_filename: [train, valid, test]``).
"""

import ast
import copy
import os
import re
from pathlib import Path

import yaml

from recbole_tmcdr.registry import MODELS, RegistryError, get_model, get_trainer, model_yaml_names
from recbole_tmcdr.validation import validate

PACKAGE_DIR = Path(__file__).resolve().parent
RAW_DATA_ENV = 'RECBOLE_TMCDR_RAW_DATA'
CACHE_DIR_ENV = 'RECBOLE_TMCDR_CACHE'
TARGET_SPLIT_FILES = ['train', 'valid', 'test']


def resource_dir(name):
    """``properties`` or ``dataset_configs``: inside the installed package (wheel) or, for a source
    checkout / editable install, at the top of the repository."""
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"The plugin's '{name}' directory was found neither in {PACKAGE_DIR} nor in {PACKAGE_DIR.parent}: "
        'reinstall recbole-tmcdr (pip install .) so the package data is present.')


def plugin_yaml_files(model_name):
    """The internal YAML files for a registered model, lowest priority first: the plugin's ``overall.yaml``,
    then for each of its YAML names the plugin's ``properties/model/<name>.yaml`` and the one in the model's own
    ``yaml_dir`` (a model from outside the package)."""
    properties = resource_dir('properties')
    own_dir = getattr(MODELS.get(model_name), 'yaml_dir', None)
    model_dirs = [properties / 'model'] + ([Path(own_dir)] if own_dir else [])
    files = [properties / 'overall.yaml']
    files += [folder / f'{name}.yaml' for name in model_yaml_names(model_name) for folder in model_dirs]
    return [f for f in files if f.is_file()]


def dataset_names():
    return sorted(p.stem for p in resource_dir('dataset_configs').glob('*.yaml'))


def dataset_config_file(dataset):
    """Path of ``dataset_configs/<dataset>.yaml``; anything but one of those names (a path included: it would
    read a YAML outside dataset_configs/) is an error listing the known names."""
    if str(dataset) not in dataset_names():
        import difflib
        close = difflib.get_close_matches(str(dataset), dataset_names(), n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ''
        raise RegistryError(
            f"Unknown dataset '{dataset}'.{hint} Available: {', '.join(dataset_names())}. "
            'To use your own scenario file, pass it with --config_files (config_file_list in Python; see README, '
            '"Scenarios").')
    return str(resource_dir('dataset_configs') / f'{dataset}.yaml')


def default_raw_data_path():
    """``$RECBOLE_TMCDR_RAW_DATA``, else ``../shared/data`` beside a source checkout, else ``./raw_data``."""
    if os.environ.get(RAW_DATA_ENV):
        return os.environ[RAW_DATA_ENV]
    beside_checkout = PACKAGE_DIR.parent.parent / 'shared' / 'data'
    return str(beside_checkout) if beside_checkout.is_dir() else os.path.abspath('raw_data')


def default_cache_dir():
    return os.environ.get(CACHE_DIR_ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'recbole_tmcdr')


SCENARIO_NAME_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')


def scenario_name(scenario):
    """The scenario's name, which names its cache directory: it may not climb out of ``cache_dir``."""
    if scenario.get('name'):
        name = str(scenario['name'])
    else:
        parts = [scenario.get('type', 'scenario'), scenario.get('source'), scenario.get('target')]
        name = '_'.join(str(p) for p in parts if p)
    if not SCENARIO_NAME_PATTERN.match(name) or '..' in name:
        from recbole_tmcdr.validation import ConfigError
        raise ConfigError(f"The scenario name {name!r} must be letters, digits, '_', '-' or '.' (it names a "
                          "directory inside cache_dir; no path separators or '..'). Set scenario.name.")
    return name


def apply_scenario(final_config_dict):
    """Prepare the scenario's atomic files (cached) and point both domains at them."""
    from recbole_tmcdr.data import prepare_scenario
    scenario = final_config_dict['scenario']
    if not isinstance(scenario, dict) or 'type' not in scenario:
        raise ValueError(
            f"The 'scenario' parameter must be a dict with at least a 'type' key (see dataset_configs/). "
            f'Got {scenario!r} instead.')
    prepared = prepare_scenario(
        name=scenario_name(scenario),
        scenario={key: value for key, value in scenario.items() if key != 'name'},
        raw_data_path=final_config_dict.get('raw_data_path') or default_raw_data_path(),
        cache_dir=final_config_dict.get('cache_dir') or default_cache_dir(),
        seed=final_config_dict['seed'],
        cold_user_ratio=final_config_dict['cold_user_ratio'],
        cold_valid_fraction=final_config_dict['cold_valid_fraction'],
        show_progress=bool(final_config_dict.get('show_progress')),
    )
    # new dicts, not updates: RecBole-CDR merges shallowly, so a nested dict set by the user is also
    # external_config_dict's, which a checkpoint records as the user's settings
    final_config_dict['source_domain'] = {**final_config_dict['source_domain'], 'dataset': prepared.source_dataset,
                                          'data_path': prepared.data_path}
    final_config_dict['target_domain'] = {**final_config_dict['target_domain'], 'dataset': prepared.target_dataset,
                                          'data_path': prepared.data_path,
                                          'benchmark_filename': list(TARGET_SPLIT_FILES)}
    check_data_against_config(prepared.stats, final_config_dict)
    final_config_dict['scenario_stats'] = dict(prepared.stats)
    # shown in the config dump and RecBole's "[Evaluation]" line instead of RecBole's unused default split
    final_config_dict['eval_args'] = {**final_config_dict['eval_args'], 'split': {'COLD': {
        'cold_user_ratio': final_config_dict['cold_user_ratio'],
        'cold_valid_fraction': final_config_dict['cold_valid_fraction'],
        **{key: prepared.stats[key] for key in ('n_warm_overlap', 'n_cold_valid', 'n_cold_test')}}}}
    final_config_dict['scenario_cache_key'] = prepared.cache_key
    return prepared


class SafeConfigLoader(yaml.SafeLoader):
    """RecBole's YAML loader is ``yaml.FullLoader`` (which it also mutates globally); the plugin's configs
    are read with a SafeLoader subclass that understands the same float syntax (``1e-3``)."""


SafeConfigLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list('-+0123456789.'))


def convert_string_values(config_dict):
    """Read string values of ``config_dict`` / command line as Python literals (RecBole ``eval()``s them,
    which would run arbitrary code from the command line); anything else stays a string."""
    for key, value in config_dict.items():
        if not isinstance(value, str):
            continue
        try:
            config_dict[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            config_dict[key] = {'true': True, 'false': False}.get(value.lower(), value)
    return config_dict


def check_data_against_config(stats, final_config_dict):
    """Settings that the prepared data cannot satisfy are errors naming the keys, before any training."""
    from recbole_tmcdr.data import ScenarioDataError
    from recbole_tmcdr.validation import ConfigError
    for domain, items, busiest in (('source', stats['n_source_items'], stats['source_max_items_per_user']),
                                   ('target', stats['n_target_items'], stats['target_train_max_items_per_user'])):
        if busiest >= items:
            raise ScenarioDataError(
                f'A {domain} training user has interacted with all {items} {domain} items, so no negative item can '
                'be sampled for them. Remove such users from the data or add items to the domain.')
    if stats.get('target_cold_max_items_per_user', 0) >= stats['n_target_items']:  # absent from older caches
        raise ScenarioDataError(
            f"A cold user has interacted with all {stats['n_target_items']} target items, so RecBole's sampler "
            'cannot draw a negative item for them. Remove such users from the data or add items to the target domain.')
    topk = final_config_dict.get('topk') or []
    topk = [topk] if isinstance(topk, int) else topk
    if topk and max(topk) > stats['n_target_items']:
        raise ConfigError(f"The 'topk' parameter ({max(topk)}) exceeds the {stats['n_target_items']} target items of "
                          'this scenario. Lower topk.')
    kshot = final_config_dict.get('kshot') or []
    longest = stats['target_rows_per_cold_test_user_max']
    if kshot and max(kshot) >= longest:
        raise ConfigError(f"The 'kshot' parameter asks for K={max(kshot)}, but no cold test user has more than "
                          f'{longest} target interactions (K-shot needs K+1). Use smaller K values.')


def install_config_hooks():
    """Wrap ``CDRConfig``: internal YAML loading, start-up validation, the cross-domain data path check, and
    safe parsing."""
    from recbole_cdr.config.configurator import CDRConfig

    CDRConfig._build_yaml_loader = lambda self: SafeConfigLoader
    # a copy: RecBole-CDR fills defaults into nested dicts (eval_args' split) and the caller may pass the dict again
    CDRConfig._convert_config_dict = lambda self, config_dict: convert_string_values(copy.deepcopy(config_dict))

    load_toolkit_yaml = CDRConfig._load_internal_config_dict
    set_default_parameters = CDRConfig._set_default_parameters
    check_cross_domain = CDRConfig._check_cross_domain

    def _load_internal_config_dict(self, model, model_class, dataset):
        load_toolkit_yaml(self, model, model_class, dataset)
        if model in MODELS:
            for file in plugin_yaml_files(model):
                self._update_internal_config_dict(str(file))
            self.internal_config_dict['MODEL_TYPE'] = model_class.type

    def _set_default_parameters(self):
        # The first step that reads training/evaluation keys (metrics, topk, train_epochs): check them before.
        if self.model in MODELS:
            user_keys = [k for k in self.external_config_dict if k not in ('source_domain', 'target_domain')]
            validate(self.final_config_dict, MODELS.get(self.model), user_keys=user_keys,
                     defaults=self.internal_config_dict, model_classes=[cls for _, cls in MODELS.items()])
        set_default_parameters(self)

    def _check_cross_domain(self):
        if self.model in MODELS:
            # Plugin models evaluate on the target domain only; RecBole-CDR would otherwise hold out 20%
            # of the SOURCE interactions (also the cold users') as a source validation set.
            self.final_config_dict['source_split'] = False
        if self.final_config_dict.get('scenario') is not None:
            apply_scenario(self.final_config_dict)
        return check_cross_domain(self)

    CDRConfig._load_internal_config_dict = _load_internal_config_dict
    CDRConfig._set_default_parameters = _set_default_parameters
    CDRConfig._check_cross_domain = _check_cross_domain


_TOOLKIT_LOOKUP_MODULES = (
    'recbole_cdr.utils',
    'recbole_cdr.utils.utils',
    'recbole_cdr.config.configurator',
    'recbole_cdr.quick_start.quick_start',
)

_hooks_installed = False


def install_toolkit_hooks():
    """Point recbole-cdr's model/trainer lookups at the plugin's registry (in every toolkit module that
    imported them by name) and its config at the plugin's YAML and scenarios (idempotent)."""
    global _hooks_installed
    if _hooks_installed:
        return
    import sys
    for name in _TOOLKIT_LOOKUP_MODULES:
        __import__(name)
        module = sys.modules[name]
        if hasattr(module, 'get_model'):
            module.get_model = get_model
        if hasattr(module, 'get_trainer'):
            module.get_trainer = get_trainer
    install_config_hooks()
    _hooks_installed = True
