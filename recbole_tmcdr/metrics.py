"""Ranking-type AUC for RecBole's evaluators, registered as the metric ``UAUC``.

RecBole 1.0.1 ships ``AUC`` only as a value metric (labels + scores, not usable together with ranking
metrics) and ``GAUC`` (per-user AUC weighted by the user's number of positives). Cold-start papers, TMCDR
included, report the per-user AUC averaged over users: that is ``UAUC``. It is computed from the same
``rec.meanrank`` data as GAUC, so it works in full ranking (all unobserved target items are negatives)
and in sampled mode (the sampled candidates are). Registering adds a name; no existing metric changes.
"""

import numpy as np
from recbole.evaluator import register
from recbole.evaluator.base_metric import AbstractMetric
from recbole.utils import EvaluatorType


class UAUC(AbstractMetric):
    r"""User-averaged AUC: :math:`\frac{1}{|U|}\sum_u AUC(u)`, users with no negative candidate skipped."""

    metric_type = EvaluatorType.RANKING
    metric_need = ['rec.meanrank']
    smaller = False

    def calculate_metric(self, dataobject):
        mean_rank = dataobject.get('rec.meanrank').numpy()
        pos_rank_sum, user_len, pos_len = np.split(mean_rank, 3, axis=1)
        value = self.metric_info(pos_rank_sum.squeeze(-1), user_len.squeeze(-1), pos_len.squeeze(-1))
        return {'uauc': round(value, self.decimal_place)}

    @staticmethod
    def metric_info(pos_rank_sum, user_len, pos_len):
        """``pos_rank_sum``: sum of the descending (1-based) ranks of a user's positives among ``user_len``
        ranked candidates, ``pos_len`` of which are positive."""
        neg_len = user_len - pos_len
        valid = (neg_len > 0) & (pos_len > 0)
        if not valid.any():
            return float('nan')
        pos_rank_sum, user_len, pos_len, neg_len = (a[valid].astype(np.float64)
                                                    for a in (pos_rank_sum, user_len, pos_len, neg_len))
        # sum over positives of (number of negatives ranked below it) / (|pos| * |neg|)
        negatives_below = pos_len * user_len - pos_rank_sum - pos_len * (pos_len - 1) / 2
        return float(np.mean(negatives_below / (pos_len * neg_len)))


PLUGIN_METRICS = {'uauc': UAUC}


def register_metrics():
    """Add the plugin's metrics to RecBole's metric tables (idempotent; nothing existing is replaced)."""
    for name, metric_cls in PLUGIN_METRICS.items():
        existing = register.metrics_dict.get(name)
        if existing is not None and existing is not metric_cls:
            raise ValueError(f"RecBole already has a metric named '{name}'; the plugin will not replace it.")
        register.metrics_dict[name] = metric_cls
        register.metric_information[name] = metric_cls.metric_need
        register.metric_types[name] = metric_cls.metric_type
