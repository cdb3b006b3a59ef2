"""Every workaround for the pinned toolkit (recbole 1.0.1 + recbole-cdr 0.1.0) on numpy 2 / torch >= 2.6.

Each fix is one function, applied once by :func:`apply_all` when ``recbole_tmcdr`` is imported, and each
has a test in ``tests/test_compat.py`` that fails without it. The fixes are scoped: they replace names
*inside the toolkit's modules* (their ``np`` / ``torch`` globals, or a toolkit method), never attributes of
numpy or torch themselves, so code that does not go through the toolkit behaves exactly as before.
"""

import functools
import sys
import types

import numpy
import torch

# numpy 2 removed these aliases of the builtins; RecBole 1.0.1 still uses them (e.g. ``np.float`` in
# recbole/evaluator/metrics.py, ``np.long`` in recbole/model/layers.py).
NUMPY_REMOVED_ALIASES = {
    'float': float, 'int': int, 'bool': bool, 'object': object, 'str': str, 'complex': complex, 'long': int,
}

# Toolkit modules that torch.load() a checkpoint they wrote themselves. The checkpoint pickles the
# Config object, which torch >= 2.6 refuses to load by default (weights_only=True).
TORCH_LOAD_MODULES = (
    'recbole.trainer.trainer',
    'recbole.quick_start.quick_start',
    'recbole_cdr.quick_start.quick_start',
)

_applied = set()


class ModuleWithOverrides(types.ModuleType):
    """A stand-in for a module that answers a few names itself and forwards every other lookup."""

    def __init__(self, base, overrides):
        super().__init__(base.__name__, base.__doc__)
        self.__dict__['_base_module'] = base
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self.__dict__['_base_module'], name)


def _once(fix):
    @functools.wraps(fix)
    def wrapper():
        if fix.__name__ not in _applied:
            fix()
            _applied.add(fix.__name__)
    return wrapper


def _toolkit_modules():
    # Import everything whose module globals we patch, so the patch reaches them now.
    import recbole.evaluator.metrics  # noqa: F401
    import recbole.model.general_recommender  # noqa: F401
    import recbole.model.context_aware_recommender  # noqa: F401
    import recbole.model.sequential_recommender  # noqa: F401
    import recbole.trainer.trainer  # noqa: F401
    import recbole.quick_start.quick_start  # noqa: F401
    import recbole_cdr.quick_start.quick_start  # noqa: F401
    return [m for name, m in list(sys.modules.items())
            if m is not None and (name == 'recbole' or name.startswith(('recbole.', 'recbole_cdr')))]


@_once
def fix_numpy_removed_aliases():
    """numpy 2 removed ``np.float``/``np.int``/``np.bool``/``np.long``...: give the toolkit's modules a numpy
    that still has them (numpy itself is untouched)."""
    numpy_with_aliases = ModuleWithOverrides(numpy, NUMPY_REMOVED_ALIASES)
    for module in _toolkit_modules():
        if getattr(module, 'np', None) is numpy:
            module.np = numpy_with_aliases


def trusted_torch_load(*args, **kwargs):
    """``torch.load`` for checkpoints RecBole wrote itself (they pickle the Config)."""
    kwargs.setdefault('weights_only', False)
    return torch.load(*args, **kwargs)


@_once
def fix_torch_load_weights_only():
    """torch >= 2.6 defaults ``torch.load(weights_only=True)``, which cannot read RecBole's checkpoints
    (``load_best_model``, ``resume_checkpoint``, ``load_data_and_model``). Only those modules get a
    ``torch`` whose ``load`` keeps the old default; an explicit ``weights_only=`` is still honoured."""
    patched_torch = ModuleWithOverrides(torch, {'load': trusted_torch_load})
    for name in TORCH_LOAD_MODULES:
        __import__(name)
        module = sys.modules[name]
        if getattr(module, 'torch', None) is torch:
            module.torch = patched_torch


FIXES = [
    fix_numpy_removed_aliases,
    fix_torch_load_weights_only,
]


def apply_all():
    """Apply every fix (idempotent)."""
    for fix in FIXES:
        fix()
