"""Workarounds for recbole 1.0.1 itself on numpy 2 / scipy >= 1.12 / pandas 2 (see :mod:`recbole_tmcdr.compat`)."""

import functools
import sys

import numpy
import scipy.sparse

from recbole_tmcdr.compat.core import ModuleWithOverrides, _once, _remember, _toolkit_modules

# numpy 2 removed these aliases of the builtins; RecBole 1.0.1 still uses them (e.g. ``np.float`` in
# recbole/evaluator/metrics.py, ``np.long`` in recbole/model/layers.py).
NUMPY_REMOVED_ALIASES = {
    'float': float, 'int': int, 'bool': bool, 'object': object, 'str': str, 'complex': complex, 'long': int,
}

@_once
def fix_numpy_removed_aliases():
    """numpy 2 removed ``np.float``/``np.int``/``np.bool``/``np.long``...: give the toolkit's modules a numpy
    that still has them (numpy itself is untouched)."""
    numpy_with_aliases = ModuleWithOverrides(numpy, NUMPY_REMOVED_ALIASES)
    for module in _toolkit_modules():
        if getattr(module, 'np', None) is numpy:
            module.np = numpy_with_aliases


class DokMatrixWithUpdate(scipy.sparse.dok_matrix):
    """scipy's ``dok_matrix`` with the private ``_update`` (an unchecked bulk insert) that scipy >= 1.12 removed."""

    def _update(self, data):
        self._dict.update(data)


# RecBole 1.0.1 graph models that build their adjacency with ``dok_matrix._update``.
RECBOLE_DOK_UPDATE_MODULES = ('lightgcn', 'ngcf', 'spectralcf', 'gcmc')


@_once
def fix_recbole_graph_models_scipy_dok():
    """RecBole 1.0.1's LightGCN / NGCF / SpectralCF / GCMC call ``dok_matrix._update`` (``AttributeError`` on
    scipy >= 1.12). Only those modules get a ``scipy.sparse`` whose ``dok_matrix`` still has it."""
    for short_name in RECBOLE_DOK_UPDATE_MODULES:
        module_name = f'recbole.model.general_recommender.{short_name}'
        __import__(module_name)
        module = sys.modules[module_name]
        if getattr(module, 'sp', None) is scipy.sparse:
            module.sp = ModuleWithOverrides(scipy.sparse, {'dok_matrix': DokMatrixWithUpdate})


def _fill_nan(self):
    """RecBole 1.0.1's ``Dataset._fill_nan``, assigning instead of a chained ``fillna(inplace=True)`` (pandas 2 warns)."""
    from recbole.utils import FeatureType
    for feat_name in self.feat_name_list:
        feat = getattr(self, feat_name)
        for field in feat:
            ftype = self.field2type[field]
            if ftype == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif ftype == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = numpy.int64 if ftype == FeatureType.TOKEN_SEQ else numpy.float64
                feat[field] = feat[field].apply(lambda x: numpy.array([], dtype=dtype) if isinstance(x, float) else x)


@_once
def fix_recbole_fill_nan_chained_assignment():
    from recbole.data.dataset import Dataset
    _remember(Dataset, '_fill_nan', 'recbole.data.dataset.Dataset._fill_nan')
    Dataset._fill_nan = _fill_nan


def _gauc_as_plain_float(calculate_metric):
    @functools.wraps(calculate_metric)
    def wrapper(self, dataobject):
        # round again as a float: float(np.float32(0.849)) is 0.8489999771118164
        result = calculate_metric(self, dataobject)
        return {name: round(float(value), self.decimal_place) for name, value in result.items()}
    return wrapper


@_once
def fix_recbole_gauc_plain_float():
    """RecBole 1.0.1's ``GAUC`` rounds a numpy float32 (``round`` keeps the type), so results hold
    ``np.float32(0.849)``, which prints and serialises as 0.8489999771118164: return a plain float instead."""
    from recbole.evaluator.metrics import GAUC
    _remember(GAUC, 'calculate_metric', 'recbole.evaluator.metrics.GAUC.calculate_metric')
    GAUC.calculate_metric = _gauc_as_plain_float(GAUC.calculate_metric)
