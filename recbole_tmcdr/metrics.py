"""Ranking-type AUC for RecBole's evaluators, registered as the metric ``UAUC``.

RecBole 1.0.1 ships ``AUC`` only as a value metric (labels + scores, not usable together with ranking
metrics) and ``GAUC`` (per-user AUC weighted by the user's number of positives). Cold-start papers, TMCDR
included, report the per-user AUC averaged over users: that is ``UAUC``. It is computed from the same
``rec.meanrank`` data as GAUC, so it works in full ranking (all unobserved target items are negatives)
and in sampled mode (the sampled candidates are). Registering adds a name; no existing metric changes.
"""

import numpy as np
import torch
from recbole.evaluator import register
from recbole.evaluator.collector import Collector
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


def sorted_rows(scores):
    """Each row of ``scores`` in ascending order. On the CPU numpy's sort of the values alone (vectorised for
    float32 / float64) is 1.5-2x faster than ``torch.sort``, which also builds the indices; it is most of an
    evaluation."""
    if scores.device.type == 'cpu' and scores.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.sort(scores.detach().numpy(), axis=1))
    return scores.sort(dim=1).values


def mean_rank(scores, positive_u, positive_i):
    """RecBole's ``rec.meanrank`` rows (sum of the positives' average descending ranks, candidates, positives) of a
    batch of full-ranking scores, equal to ``Collector.eval_batch_collect``'s.

    A positive's average rank among tied scores is (#scores above it) + (#scores equal to it, itself included,
    + 1) / 2, as in ``Collector._average_rank``; both counts come from placing the positives in the row's sorted
    scores (``searchsorted``), which skips RecBole's index gather and its average rank of every item. The
    candidates are the scores above the row's minimum (RecBole's ``argmin`` of the sorted row: the masked history
    and padding sit at -inf). Rank sums accumulate in float64 and are rounded once (RecBole adds in float32: above
    2^23 its sums can be off by a few units, ~1e-8 of an AUC). NaN scores are an error (RecBole ranks them
    arbitrarily)."""
    n_users, n_items = scores.shape
    device = scores.device
    if torch.isnan(scores).any():  # RecBole's sort would rank NaN anywhere, and its AUC could exceed 1
        raise ValueError(f'The model scored {int(torch.isnan(scores).any(dim=1).sum())} of {n_users} evaluated users '
                         'with NaN: ranking metrics would be meaningless. Check its embeddings and learning rate.')
    if len(positive_i) and not (0 <= int(positive_i.min()) and int(positive_i.max()) < n_items):
        raise IndexError(f'Positive item ids must lie in [0, {n_items}); got {int(positive_i.min())}..'
                         f'{int(positive_i.max())}.')
    pairs = torch.unique(positive_u.to(device, torch.long) * n_items + positive_i.to(device, torch.long))
    users, items = pairs // n_items, pairs % n_items
    n_positive = torch.bincount(users, minlength=n_users)
    width = int(n_positive.max()) if len(pairs) else 0
    # each user's positive scores in a row of ``width`` slots (the unused ones are masked out below)
    slot = torch.arange(len(pairs), device=device) - (torch.cumsum(n_positive, 0) - n_positive)[users]
    positive = torch.zeros((n_users, width), dtype=scores.dtype, device=device)
    positive[users, slot] = scores[users, items]
    ascending = sorted_rows(scores)
    below = torch.searchsorted(ascending, positive, right=False)
    not_above = torch.searchsorted(ascending, positive, right=True)
    ranks = (n_items - not_above) + (not_above - below + 1) / 2
    used = torch.arange(width, device=device) < n_positive[:, None]
    rank_sum = torch.where(used, ranks.double(), torch.zeros((), dtype=torch.float64, device=device)).sum(dim=1)
    n_candidates = (scores > ascending[:, :1]).sum(dim=1)
    # RecBole's rows are float32 (float64 for float64 scores); rank sums need more than half precision
    return torch.stack([rank_sum, n_candidates.double(), n_positive.double()], dim=1).to(
        torch.promote_types(scores.dtype, torch.float32))


class RankCollector(Collector):
    """RecBole's ``Collector`` with ``rec.meanrank`` (GAUC, UAUC) from :func:`mean_rank` instead of sorting every
    user's row of item scores, which took most of a full-ranking evaluation; the other resources are RecBole's."""

    def eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i):
        if not self.register.need('rec.meanrank'):
            return super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        rows = mean_rank(scores_tensor, positive_u, positive_i)  # first: an error leaves the collector as it was
        setattr(self.register, 'rec.meanrank', False)  # RecBole's branch skipped for this batch only
        try:
            super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        finally:
            setattr(self.register, 'rec.meanrank', True)
        self.data_struct.update_tensor('rec.meanrank', rows)
