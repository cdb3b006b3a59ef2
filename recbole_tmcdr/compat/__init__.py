"""Every workaround for the pinned toolkit (recbole 1.0.1 + recbole-cdr 0.1.0) on numpy 2 / torch >= 2.6.

Each fix is one function, applied once by :func:`apply_all` when ``recbole_tmcdr`` is imported, and each
has a test in ``tests/test_compat.py`` that fails without it. The fixes are scoped: they replace names
*inside the toolkit's modules* (their ``np`` / ``sp`` globals, or a toolkit method), never attributes of
numpy or torch themselves, so code that does not go through the toolkit behaves exactly as before.

Two groups, one module each (the shared machinery is in :mod:`.core`):

- :mod:`.recbole`, the environment and recbole itself: numpy 2 broke the pinned toolkit
  (``fix_numpy_removed_aliases``; torch >= 2.6's ``weights_only=True`` default is kept and enforced: see
  :mod:`recbole_tmcdr.safe_loading`), scipy >= 1.12 its graph models (``fix_recbole_graph_models_scipy_dok``),
  pandas 2 warns in its NaN filling (``fix_recbole_fill_nan_chained_assignment``), and its GAUC is a numpy
  float32 that prints as 0.8489999771118164 (``fix_recbole_gauc_plain_float``);
- :mod:`.recbole_cdr`, recbole-cdr 0.1.0 bugs, each patched on a recbole-cdr class or module name only (recbole's ``Trainer``,
  ``Collector``, ``Dataset`` and ``NegSampleEvalDataLoader`` are untouched for single-domain code):
  sampled (``uniN``/``popN``) evaluation reads field names a CDRConfig does not have
  (``fix_cdr_sampled_eval_loader_fields``, ``fix_cdr_trainer_eval_fields``); a ``.item``/``.user`` file
  crashes the id remapping or misaligns the feature tables (``fix_cdr_item_set_uses_iid_field``,
  ``fix_cdr_remap_fields_item_feat``, ``fix_cdr_feat_tables_by_id``); source negatives are drawn from a
  range shifted by one (``fix_cdr_source_sampler_id_ranges``); ``id2token`` of a remapped id field returns other
  tokens (``fix_cdr_id2token_by_id``).

:data:`ORIGINALS` keeps every replaced toolkit object (``'module.Class.attr'`` -> original), so the tests
can show what the unpatched code does.
"""

from recbole_tmcdr.compat.core import ORIGINALS, ModuleWithOverrides  # noqa: F401  (the tests and safe_loading use them)
from recbole_tmcdr.compat.recbole import (  # noqa: F401
    fix_numpy_removed_aliases, fix_recbole_fill_nan_chained_assignment, fix_recbole_gauc_plain_float,
    fix_recbole_graph_models_scipy_dok)
from recbole_tmcdr.compat.recbole_cdr import (  # noqa: F401
    CrossDomainNegSampleEvalDataLoader, _remap_fields, calculate_user_item_from_both_domain,
    fix_cdr_feat_tables_by_id, fix_cdr_id2token_by_id, fix_cdr_item_set_uses_iid_field, fix_cdr_remap_fields_item_feat,
    fix_cdr_sampled_eval_loader_fields, fix_cdr_source_sampler_id_ranges, fix_cdr_trainer_eval_fields)

FIXES = [
    fix_numpy_removed_aliases,
    fix_recbole_fill_nan_chained_assignment,
    fix_recbole_gauc_plain_float,
    fix_recbole_graph_models_scipy_dok,
    fix_cdr_sampled_eval_loader_fields,
    fix_cdr_trainer_eval_fields,
    fix_cdr_item_set_uses_iid_field,
    fix_cdr_remap_fields_item_feat,
    fix_cdr_feat_tables_by_id,
    fix_cdr_source_sampler_id_ranges,
    fix_cdr_id2token_by_id,
]


def apply_all():
    """Apply every fix (idempotent)."""
    for fix in FIXES:
        fix()
