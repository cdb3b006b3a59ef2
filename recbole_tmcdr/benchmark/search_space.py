"""The grid a benchmark searches for each model, and the values a run will see: from the spec's ``search_space``,
else the model's YAML (``benchmark_search_space``), else :data:`DEFAULT_SEARCH_SPACE` (see :mod:`.spec`)."""

import itertools
from pathlib import Path

from recbole_tmcdr.benchmark.spec import SpecError, load_yaml

DEFAULT_SEARCH_SPACE = {'learning_rate': [0.001, 0.002, 0.005, 0.01]}  # the paper's grid
SEARCH_SPACE_KEY = 'benchmark_search_space'


def merged_model_yaml(model):
    """The plugin's YAML files of ``model`` merged (later files override, key by key at the top level, as
    RecBole merges them)."""
    from recbole_tmcdr.config import plugin_yaml_files
    merged = {}
    for path in plugin_yaml_files(model):
        merged.update(load_yaml(Path(path)) or {})
    return merged


def _trains_nothing(train_epochs):
    try:
        return bool(train_epochs) and all(int(str(p).split(':')[1]) == 0 for p in train_epochs)
    except (IndexError, ValueError):
        return False


def _parameter_free_recbole_model(model):
    """RecBole's TRADITIONAL general models (Pop, ItemKNN, EASE) under the plugin's adapter: no learning rate."""
    try:
        from recbole.model import general_recommender
        from recbole.utils import ModelType
        from recbole_tmcdr.registry import MODELS
        if MODELS.get(model).__name__ != 'RecBoleGeneralAdapter':
            return False
        return getattr(getattr(general_recommender, model, None), 'type', None) == ModelType.TRADITIONAL
    except Exception:  # noqa: BLE001 - a heuristic: fall back to the default grid
        return False


def model_search_space(model, spec_spaces=None):
    """The grid searched for ``model``: the spec's ``search_space[model]`` if given, else the model YAML's
    ``benchmark_search_space`` (later plugin files override earlier ones), else ``{}`` for a model that trains
    nothing (all ``train_epochs`` phases at 0 epochs, or a parameter-free RecBole model), else
    :data:`DEFAULT_SEARCH_SPACE`."""
    if spec_spaces and model in spec_spaces:
        space = spec_spaces[model]
    else:
        merged = merged_model_yaml(model)
        if SEARCH_SPACE_KEY in merged:
            space = merged[SEARCH_SPACE_KEY]
        elif _trains_nothing(merged.get('train_epochs')) or _parameter_free_recbole_model(model):
            space = {}
        else:
            space = DEFAULT_SEARCH_SPACE
    space = space or {}
    if not isinstance(space, dict):
        raise SpecError(f"The search space of '{model}' must be a dict param -> list of values. Got {space!r}.")
    normalised = {}
    for key, values in space.items():
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not values:
            raise SpecError(f"The search space of '{model}' has no value for '{key}'.")
        normalised[str(key)] = values
    return normalised


def grid(space, fixed=()):
    """Trials (param dicts) of a grid, in the order of the YAML keys; keys in ``fixed`` (set by the user's
    overrides) are left out of the search."""
    keys = [k for k in space if k not in fixed]
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def resolved_value(model, key, settings, default=None):
    """A parameter's value as the run will see it: ``settings`` (what outranks the model's YAML: the run's config
    files and overrides, merged in RecBole's order), else the model's plugin YAML, else default."""
    if key in settings:
        return settings[key]
    return merged_model_yaml(model).get(key, default)
