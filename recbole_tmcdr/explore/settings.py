"""Settings of the exploration simulation: ``properties/explore.yaml`` < the user's files < ``--key=value``.

Every key is checked before any model is trained or loaded; a bad value is one error naming the key, what is
allowed and the value ("The 'epsilon' parameter of explore must be a float in [0, 1]. Got 2 instead."), and
an unknown key is an error with the closest known key.
"""

import difflib

import yaml

from recbole_tmcdr.config import SafeConfigLoader, resource_dir
from recbole_tmcdr.explore.policies import POLICIES, ExploreParams
from recbole_tmcdr.validation import MAX_SEED, ConfigError, Rule, in_range, is_int, non_negative, positive

OWNER = 'explore'


def positive_ints(v):
    return len(v) > 0 and all(is_int(x) and x > 0 for x in v)


def seeds_in_range(v):
    return len(v) > 0 and all(is_int(s) and 0 <= s <= MAX_SEED for s in v) and len(set(v)) == len(v)


def non_empty_names(v):
    return len(v) > 0 and all(isinstance(x, str) and x for x in v) and len(set(v)) == len(v)


def two_positive_numbers(v):
    return len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in v)


RULES = {
    'rounds': Rule('int', positive, '> 0'),
    'slate_size': Rule('int', positive, '> 0'),
    'report_rounds': Rule('list', positive_ints, 'of integers > 0, non-empty'),
    'seeds': Rule('list', seeds_in_range, f'of distinct integers in [0, {MAX_SEED}], non-empty'),
    'models': Rule('list', non_empty_names, 'of distinct model names, non-empty'),
    'no_transfer_prior': Rule('bool'),
    'policies': Rule('list', non_empty_names, 'of distinct policy names, non-empty'),
    'prior_strength': Rule('float', positive, '> 0'),
    'bias_strength': Rule('float', positive, '> 0'),
    'epsilon': Rule('float', in_range(0, 1), 'in [0, 1]'),
    'linucb_alpha': Rule('float', non_negative, '>= 0'),
    'thompson_scale': Rule('float', non_negative, '>= 0'),
    'ucb1_c': Rule('float', non_negative, '>= 0'),
    'beta_prior': Rule('list', two_positive_numbers, 'of two numbers > 0, [a, b]'),
    'search': Rule('dict', nullable=True),
    'cohort_size': Rule('int', positive, '> 0'),
    'threads': Rule('int', positive, '> 0'),
    'model_settings': Rule('dict'),
    'notes': Rule('str', nullable=True),
}
# model_settings may not set what the command decides itself
RESERVED_MODEL_SETTINGS = ('seed', 'model', 'checkpoint_dir')


def read_yaml(path):
    with open(path, encoding='utf-8') as f:
        content = yaml.load(f, Loader=SafeConfigLoader)
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f'{path} must hold a mapping of exploration settings (key: value). Got {content!r} instead.')
    return content


def default_settings():
    return read_yaml(resource_dir('properties') / 'explore.yaml')


def check(settings):
    """The one-line error of the first bad key, or None."""
    for key in settings:
        if key not in RULES:
            close = difflib.get_close_matches(key, list(RULES), n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ''
            return f"Unknown exploration parameter '{key}'.{hint} Known: {', '.join(sorted(RULES))}."
    for key, rule in RULES.items():
        if not rule.accepts(settings.get(key)):
            return f"The '{key}' parameter of {OWNER} must be {rule.describe()}. Got {settings.get(key)!r} instead."
    if max(settings['report_rounds']) > settings['rounds']:
        return (f"The 'report_rounds' parameter of {OWNER} must not exceed rounds ({settings['rounds']}). "
                f"Got {settings['report_rounds']!r} instead.")
    for name in settings['policies']:
        if name not in POLICIES:
            return POLICIES.unknown_message(name)
    message = check_search(settings['search'] or {})
    if message:
        return message
    reserved = sorted(set(settings['model_settings']) & set(RESERVED_MODEL_SETTINGS))
    if reserved:
        return (f"The 'model_settings' parameter of {OWNER} may not set {', '.join(reserved)}: the seeds come from "
                "'seeds', the models from 'models' and checkpoints go to the cache.")
    return check_models(settings['models'])


def check_search(search):
    """Each searched key is a setting some policy reads, with a non-empty list of values its rule accepts."""
    searchable = sorted({key for _, policy in POLICIES.items() for key in policy.params})
    for key, values in search.items():
        if key not in searchable:
            return (f"The 'search' parameter of {OWNER} lists '{key}', which no policy reads. Searchable: "
                    f"{', '.join(searchable)}.")
        if not isinstance(values, list) or not values:
            return f"The 'search' parameter of {OWNER} must give '{key}' a non-empty list of values. Got {values!r} instead."
        for value in values:
            if not RULES[key].accepts(value):
                return (f"The 'search' parameter of {OWNER} gives '{key}' the value {value!r}: each must be "
                        f"{RULES[key].describe()}.")
    return None


def check_models(names):
    from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
    from recbole_tmcdr.registry import MODELS
    for name in names:
        if name not in MODELS:
            return MODELS.unknown_message(name)
        if not issubclass(MODELS.get(name), CrossDomainMappingRecommender):
            mapping = [m for m, cls in MODELS.items() if issubclass(cls, CrossDomainMappingRecommender)]
            return (f"The 'models' parameter of {OWNER} lists '{name}', which maps no source user into the target "
                    f"space (no f(u^s) to start from). Mapping models: {', '.join(mapping)}.")
    return None


def load_settings(config_files=(), overrides=None):
    """Defaults, then each file, then ``overrides``; checked."""
    settings = default_settings()
    for path in config_files:
        settings.update(read_yaml(path))
    settings.update(overrides or {})
    message = check(settings)
    if message:
        raise ConfigError(message)
    return settings


def explore_params(settings):
    return ExploreParams(prior_strength=float(settings['prior_strength']),
                         bias_strength=float(settings['bias_strength']), epsilon=float(settings['epsilon']),
                         linucb_alpha=float(settings['linucb_alpha']), thompson_scale=float(settings['thompson_scale']),
                         ucb1_c=float(settings['ucb1_c']), beta_prior=tuple(float(x) for x in settings['beta_prior']))
