"""The plugin's one explicit table of models and trainers.

recbole-cdr 0.1.0 finds models by importing ``recbole_cdr.model.cross_domain_recommender.<name>`` (absent
from its wheel) and trainers by ``getattr(recbole_cdr.trainer, name + 'Trainer')`` with a silent fallback to
``CrossDomainTrainer``. :func:`recbole_tmcdr.config.install_toolkit_hooks` replaces those two lookups with
:func:`get_model` / :func:`get_trainer` over :data:`MODELS` / :data:`TRAINERS`: a model declares its trainer,
an unknown name is an error that lists what exists, and nothing falls back silently.

Models from outside the package register the same way (:func:`register_model`), in a module imported before
the name is looked up: by the user's code, by ``--import MODULE`` (:func:`import_modules`), or, for an installed
package, through the entry-point group ``recbole_tmcdr.models`` (its setup.cfg: ``[options.entry_points]
recbole_tmcdr.models = MyModel = my_package.my_model``), whose modules :data:`MODELS` imports at its first
lookup.
"""

import difflib
import importlib
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = 'recbole_tmcdr.models'


class RegistryError(ValueError):
    """An unknown or duplicate name in a registry."""


class Registry:
    """A name -> object table whose errors say what exists."""

    def __init__(self, kind, entry_point_group=None):
        self.kind = kind
        self._entries = {}
        self._unavailable = {}
        self.entry_point_group = entry_point_group
        self._plugins_loaded = entry_point_group is None
        self._plugin_error = None

    def load_plugins(self):
        """Import, once, the modules that installed packages declare in the entry-point group (they register
        their entries). A module that fails to import is an error naming its package and entry point, raised
        by every lookup."""
        if not self._plugins_loaded:
            self._plugins_loaded = True  # first: a plugin module may itself look names up
            for entry_point in entry_points(group=self.entry_point_group):
                try:
                    entry_point.load()
                except Exception as error:  # noqa: BLE001 - whatever the third-party module raised, one message
                    package = entry_point.dist.name if entry_point.dist else 'an unknown package'
                    self._plugin_error = (
                        f"The entry point '{entry_point.name} = {entry_point.value}' (group {self.entry_point_group}) "
                        f"of the package '{package}' failed to load: {type(error).__name__}: {error}. Fix or "
                        'uninstall that package.')
                    break
        if self._plugin_error:
            raise RegistryError(self._plugin_error)

    def mark_unavailable(self, name, reason):
        """A known name deliberately not registered: looking it up explains why."""
        self._unavailable[name] = reason

    def register(self, name, obj):
        if not isinstance(name, str) or not name:
            raise RegistryError(f'A {self.kind} name must be a non-empty string. Got {name!r} instead.')
        if name in self._entries:
            raise RegistryError(
                f"Duplicate {self.kind} name '{name}': it is already registered for "
                f'{self._entries[name]!r}. Choose another name.')
        self._entries[name] = obj
        return obj

    def get(self, name):
        self.load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name):
        self.load_plugins()
        if name in self._unavailable:
            return self._unavailable[name]
        close = difflib.get_close_matches(str(name), list(self._entries), n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ''
        return f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(self.names())}."

    def names(self):
        self.load_plugins()
        return sorted(self._entries)

    def __contains__(self, name):
        self.load_plugins()
        return name in self._entries

    def items(self):
        self.load_plugins()
        return sorted(self._entries.items())


MODELS = Registry('model', entry_point_group=ENTRY_POINT_GROUP)
TRAINERS = Registry('trainer')


def register_model(*names):
    """Class decorator: register a model class under its own name, or under the given names (aliases that
    share one implementation and differ only in their YAML, e.g. ``TMCDR_MF`` / ``TMCDR_BPR``). The class's
    ``config_rules`` (its own keys) are checked here."""
    def decorator(cls):
        from recbole_tmcdr.validation import check_declared_rules
        check_declared_rules(cls)
        for name in names or (cls.__name__,):
            MODELS.register(name, cls)
        return cls
    return decorator


def register_trainer(cls):
    TRAINERS.register(cls.__name__, cls)
    return cls


def import_modules(modules):
    """Import the user's modules that register models (``--import``, a benchmark spec's ``imports``), in order."""
    for module in modules or ():
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - whatever the user's module raised, one message naming it
            hint = (' A module given with --import must be importable: installed, or its directory on PYTHONPATH '
                    'or the current directory.' if isinstance(error, ModuleNotFoundError) else '')
            raise RegistryError(f"Cannot import the module '{module}': {type(error).__name__}: {error}.{hint}") \
                from error


def get_model(model_name):
    """Model class for a registered name (replaces ``recbole_cdr.utils.get_model``)."""
    return MODELS.get(model_name)


def get_trainer(model_type, model_name):
    """Trainer class declared by the model (replaces ``recbole_cdr.utils.get_trainer``)."""
    model_class = MODELS.get(model_name)
    trainer_name = getattr(model_class, 'trainer', None)
    if trainer_name is None:
        raise RegistryError(
            f"Model '{model_name}' ({model_class.__name__}) declares no trainer: set its class attribute "
            f"'trainer' to one of: {', '.join(TRAINERS.names())}.")
    return TRAINERS.get(trainer_name)


def model_yaml_names(model_name):
    """Model YAML names of a registered name, lowest priority first: those the class declares it extends
    (``yaml_bases``, e.g. ``TMCDR`` for ``TMCDRAdapted``), the implementation's own (``TMCDR``, shared by its
    aliases), then the alias's (``TMCDR_MF``). Names without a file are skipped by the caller."""
    model_class = MODELS.get(model_name)
    names = [*getattr(model_class, 'yaml_bases', ()), model_class.__name__]
    return names if model_class.__name__ == model_name else names + [model_name]
