"""Which trials and runs of a benchmark train together: trials of a run that differ only in keys changing the
inference (a model's ``inference_keys``) form an ``inference_grid`` of one training (:func:`trial_groups`), and
runs of a unit of work that train alike share their trainings (:func:`training_batches`: TMCDRAdapted_X with
TMCDR_X). Each trial still gets the result of its own run (:mod:`recbole_tmcdr.trainer.inference_grid`)."""


def model_class(model):
    """The registered class of ``model``, or None if unknown (it then fails in its own run, with the registry's
    message)."""
    from recbole_tmcdr.registry import MODELS
    try:
        return MODELS.get(model)
    except Exception:  # noqa: BLE001 - the registry's error belongs to the run
        return None


def inference_keys(model):
    """The keys of ``model`` that change only its inference (``inference_keys`` of its class; none if unknown)."""
    return set(getattr(model_class(model), 'inference_keys', None) or {})


def settings_key(settings):
    return repr(sorted(settings.items()))


def trial_groups(model, trials):
    """The trials of a run as units of training: [(trial indices, training params, inference_grid or None)].
    Trials that differ only in the model's inference keys (SSCDR's ``sscdr_hops``) and whose settings of those
    keys form a grid train once, validating every setting (``inference_grid``, see
    :mod:`recbole_tmcdr.trainer.inference_grid`); every other trial is a unit of its own."""
    from recbole_tmcdr.trainer.inference_grid import grid_settings  # the order the trainer validates them in
    keys = inference_keys(model)
    groups = {}
    for index, params in enumerate(trials):
        training = {k: v for k, v in params.items() if k not in keys}
        groups.setdefault(settings_key(training), (training, []))[1].append(index)
    units = []
    for training, indices in groups.values():
        settings = [{k: v for k, v in trials[i].items() if k in keys} for i in indices]
        grid = {k: list(dict.fromkeys(s[k] for s in settings)) for k in settings[0]}
        if len(indices) > 1 and grid_settings(grid) == settings:
            units.append((indices, training, grid))
        else:
            units += [([index], trials[index], None) for index in indices]
    return sorted(units, key=lambda unit: unit[0][0])


def trains_alike(primary, other):
    """Whether the run ``other`` trains what ``primary`` trains, so that one training serves both: same
    scenario, seed and run settings; models of one class, or one declared to share the other's training
    (``shares_training_with``: TMCDRAdapted for TMCDR); model YAML files that differ only in keys changing the
    inference (``inference_keys``, which the run of ``other`` then sets to its own values) or searched in every
    trial of ``other``. Not with K-shot, whose results only the setting a training chooses gets."""
    from recbole_tmcdr.benchmark.search_space import SEARCH_SPACE_KEY, merged_model_yaml
    same = ('scenario', 'seed', 'base_config', 'overrides', 'run_kwargs', 'imports')
    if (primary['kshot'] or other['kshot'] or not primary.get('share_training', True)
            or not other.get('share_training', True) or any(primary[key] != other[key] for key in same)):
        return False
    first, second = model_class(primary['model']), model_class(other['model'])
    related = (first is second or getattr(second, 'shares_training_with', None) is first
               or getattr(first, 'shares_training_with', None) is second)
    if first is None or second is None or not related:
        return False
    yamls = merged_model_yaml(primary['model']), merged_model_yaml(other['model'])
    differing = {key for key in set(yamls[0]) | set(yamls[1]) if yamls[0].get(key) != yamls[1].get(key)}
    searched = set.intersection(*(set(params) for params in other['trials']))
    return differing - {SEARCH_SPACE_KEY} <= inference_keys(primary['model']) | searched


def training_batches(tasks):
    """The runs of a unit of work as batches that train together (:func:`trains_alike` the batch's first run),
    in the order of their first run."""
    batches = []
    for task in tasks:
        batch = next((batch for batch in batches if trains_alike(batch[0], task)), None)
        if batch is None:
            batches.append([task])
        else:
            batch.append(task)
    return batches
