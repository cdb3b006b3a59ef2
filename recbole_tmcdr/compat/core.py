"""Shared machinery of the toolkit workarounds: the record of replaced objects, run-once fixes, module stand-ins."""

import functools
import sys
import types

_applied = set()

# 'module[.Class].name' -> the toolkit object a fix replaced (for the tests and for debugging).
ORIGINALS = {}


def _remember(owner, name, key):
    """Record the original ``owner.name`` under ``key`` (once: re-applying never records a patched one)."""
    ORIGINALS.setdefault(key, getattr(owner, name))


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
    # NOT recbole.model.sequential_recommender: its sine.py calls torch.autograd.set_detect_anomaly(True)
    # at import, which makes every backward pass of the process ~10x slower.
    import recbole.trainer.trainer  # noqa: F401
    import recbole.quick_start.quick_start  # noqa: F401
    import recbole_cdr.quick_start.quick_start  # noqa: F401
    return [m for name, m in list(sys.modules.items())
            if m is not None and (name == 'recbole' or name.startswith(('recbole.', 'recbole_cdr')))]

