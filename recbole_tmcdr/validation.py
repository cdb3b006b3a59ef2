"""Start-up checks of the plugin's parameters: type, range, allowed values, misspellings, conflicts.

Every plugin key has one :class:`Rule` here. A bad value is an error in the form
"The 'meta_inner_lr' parameter of TMCDR must be a float >= 0. Got -1 instead."; a key the user wrote that
no one knows but that is close to a plugin key gets a warning with the suggestion (RecBole itself reads any
unknown key as ``None``, so a typo would otherwise be silently ignored).
"""

import difflib
import numbers
from dataclasses import dataclass
from logging import getLogger
from typing import Callable, Optional, Tuple

from recbole.utils import argument_list


class ConfigError(ValueError):
    """A plugin parameter with a bad type, range or combination."""


@dataclass(frozen=True)
class Rule:
    kind: str                                   # 'float' | 'int' | 'bool' | 'str' | 'list' | 'dict'
    condition: Optional[Callable] = None        # extra check on the value
    requirement: str = ''                       # how the condition reads, e.g. '> 0'
    choices: Optional[Tuple] = None
    nullable: bool = False
    owner: str = 'recbole-tmcdr'                # class (in the model's MRO) whose models read the key

    def accepts(self, value):
        if value is None:
            return self.nullable
        if self.choices is not None:
            return value in self.choices
        type_ok = {
            'float': isinstance(value, numbers.Real) and not isinstance(value, bool),
            'int': isinstance(value, numbers.Integral) and not isinstance(value, bool),
            'bool': isinstance(value, bool),
            'str': isinstance(value, str),
            'list': isinstance(value, (list, tuple)),
            'dict': isinstance(value, dict),
        }[self.kind]
        return type_ok and (self.condition is None or bool(self.condition(value)))

    def describe(self):
        if self.choices is not None:
            text = 'one of ' + ', '.join(repr(c) for c in self.choices)
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


BASE_MODEL_NAMES = ('MF', 'BPR', 'ListRankMF', 'CML')
MAPPING = 'CrossDomainMappingRecommender'  # the shared base of every source->target bridge model
GLOBAL = 'recbole-tmcdr'

RULES = {
    # protocol and data
    'cold_user_ratio': Rule('float', open_unit, 'in (0, 1)'),
    'cold_valid_fraction': Rule('float', open_unit, 'in (0, 1)'),
    'raw_data_path': Rule('str', nullable=True),
    'cache_dir': Rule('str', nullable=True),
    'kshot': Rule('list', list_of_non_negative_ints, 'of integers >= 0', nullable=True),
    'scenario': Rule('dict', lambda v: 'type' in v, "with a 'type' key", nullable=True),
    # shared training keys
    'embedding_size': Rule('int', positive, '> 0', owner=MAPPING),
    'pretrain_learning_rate': Rule('float', positive, '> 0', owner=MAPPING),
    'learning_rate': Rule('float', positive, '> 0'),
    'embedding_reg_weight': Rule('float', non_negative, '>= 0', owner=MAPPING),
    'pretrain_stopping_tol': Rule('float', non_negative, '>= 0', owner=MAPPING),
    'pretrain_stopping_step': Rule('int', positive, '> 0', owner=MAPPING),
    'force_pretrain': Rule('bool', owner=MAPPING),
    'pretrain_users': Rule('str', choices=('all', 'overlap'), owner=MAPPING),
    'base_model': Rule('str', choices=BASE_MODEL_NAMES, owner=MAPPING),
    'cml_margin': Rule('float', positive, '> 0', owner=MAPPING),
    'mapping_layers': Rule('list', lambda v: all(isinstance(h, int) and h > 0 for h in v), 'of positive integers',
                           owner=MAPPING),
    'mapping_activation': Rule('str', choices=('tanh', 'relu', 'sigmoid'), owner=MAPPING),
    'mapping_batch_size': Rule('int', positive, '> 0', owner=MAPPING),
    # TMCDR
    'meta_inner_lr': Rule('float', non_negative, '>= 0', owner='TMCDR'),
    'meta_inner_steps': Rule('int', non_negative, '>= 0', owner='TMCDR'),
    'meta_first_order': Rule('bool', owner='TMCDR'),
    'meta_loss_reduction': Rule('str', choices=('sum', 'mean'), owner='TMCDR'),
    'meta_group_size': Rule('int', lambda v: v >= 2, '>= 2', owner='TMCDR'),
    'meta_support_fraction': Rule('float', open_unit, 'in (0, 1)', owner='TMCDR'),
    'meta_groups_per_batch': Rule('int', positive, '> 0', owner='TMCDR'),
    'meta_max_positives_per_user': Rule('int', positive, '> 0', nullable=True, owner='TMCDR'),
    'meta_vmap_chunk_size': Rule('int', positive, '> 0', nullable=True, owner='TMCDR'),
    'meta_test_adapt_steps': Rule('int', non_negative, '>= 0', owner='TMCDR'),
    'meta_warm_start_epochs': Rule('int', non_negative, '>= 0', owner='TMCDR'),
}

# Keys that are neither RecBole's nor a rule's but are legitimately set by the plugin or the toolkit.
OTHER_KNOWN_KEYS = {'model', 'dataset', 'source_domain', 'target_domain', 'train_epochs', 'scenario_stats',
                    'scenario_cache_key', 'benchmark_search_space', 'overlap_batch_size', 'reg_weight',
                    'user_link_file_path', 'item_link_file_path', 'split_valid', 'log_wandb', 'wandb_project'}


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


def register_rules(rules):
    """Models added later (baselines) declare their keys here; a duplicate key is an error."""
    for key, rule in rules.items():
        if key in RULES and RULES[key] != rule:
            raise ConfigError(f"Parameter '{key}' already has a different validation rule.")
        RULES[key] = rule


def known_keys(internal_keys=()):
    recbole_keys = set(argument_list.general_arguments + argument_list.training_arguments +
                       argument_list.evaluation_arguments + argument_list.dataset_arguments)
    return recbole_keys | set(RULES) | OTHER_KNOWN_KEYS | set(internal_keys)


def validate(final_config, model_family, owner_names, user_keys=(), internal_keys=()):
    """Check every plugin key read by a model of class ``model_family`` (whose MRO class names are
    ``owner_names``); warn about user-written keys that look like misspelt plugin keys."""
    refuse_pickle_keys(final_config)
    for key, rule in RULES.items():
        if rule.owner != GLOBAL and rule.owner not in owner_names:
            continue
        value = final_config.get(key)
        if not rule.accepts(value):
            who = GLOBAL if rule.owner == GLOBAL else model_family
            raise ConfigError(f"The '{key}' parameter of {who} must be {rule.describe()}. Got {value!r} instead.")
    known = known_keys(internal_keys)
    logger = getLogger()
    for key in user_keys:
        if key in known:
            continue
        close = difflib.get_close_matches(key, list(RULES), n=1, cutoff=0.75)
        if close:
            logger.warning(f"Unknown parameter '{key}' (ignored by RecBole). Did you mean '{close[0]}'?")
