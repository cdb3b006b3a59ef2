"""Cold-to-warm routing: per K, serve the method that is best on the cold VALIDATION users at that K.

No single method leads along the interaction-count axis (docs/COLD_START_STACK.md): cross-domain maps at K=0,
fold-in or meta-learning after a few interactions. :func:`route_per_k` picks, per K, the method with the best
cold-validation score among the candidates' K-shot results (``kshot_valid_results`` of
:func:`recbole_tmcdr.quick_start.run_recbole_cdr`): the upper envelope as validation sees it; test results are
never read. :func:`serve` gives a user the chosen method's scores, or the fallback's (popularity) where those
scores carry no ranking.

The confidence signal is :func:`degenerate_users`: a user's routed scores over the target items are degenerate when
one of them is NaN or +inf, when none is finite, or when they are near-constant (``max - min`` at most ``tolerance``
x the largest absolute score), e.g. a content profile with no genre, a model whose embeddings collapsed. Such a
ranking is arbitrary (ties broken by item id), so the user is served popularity instead and counted.

The registered model :class:`recbole_tmcdr.model.k_router.KRouter` trains its candidates on one split and routes
them (``run_recbole_cdr(model='KRouter', ...)``); :class:`RoutedScorer` routes models that are already trained on
ONE run's split (same scenario and seed), evaluated with :func:`recbole_tmcdr.kshot.evaluate_kshot` (``model=``).
"""

import torch

from recbole_tmcdr.model.foldin import value_at_k

POPULARITY = 'TargetPop'


def route_per_k(valid_results, metric='ndcg@10'):
    """{K: method} with the best validation ``metric`` at each K.

    ``valid_results`` is {method: {K: metrics}} on the cold VALIDATION users; a K that a method did not evaluate
    (no user with K+1 interactions) does not count for it. Ties go to the method listed first.
    """
    metric = metric.lower()
    choice, best = {}, {}
    for method, per_k in valid_results.items():
        for k, metrics in per_k.items():
            k = int(k)
            score = metrics.get(metric) if metrics.get('n_users', 1) else None
            if score is not None and (k not in best or score > best[k]):
                choice[k], best[k] = method, score
    return dict(sorted(choice.items()))


def routed_results(valid_results, test_results, metric='ndcg@10'):
    """{K: {'method': chosen on validation, 'valid': its validation metrics, 'test': its test metrics}}: the
    router's curve when no user falls back (the choice reads ``valid_results`` only)."""
    return {k: {'method': method, 'valid': valid_results[method][k], 'test': test_results[method].get(k)}
            for k, method in route_per_k(valid_results, metric).items()}


def degenerate_users(scores, tolerance=1e-6):
    """Users (rows) whose scores carry no ranking: a non-finite score (masked -inf entries aside) or a spread
    ``max - min`` of at most ``tolerance`` x the largest absolute score (near-constant). (B, N) -> (B,) bool."""
    finite = torch.isfinite(scores)
    invalid = torch.isnan(scores).any(-1) | (scores == float('inf')).any(-1)
    high = torch.where(finite, scores, torch.full_like(scores, -float('inf'))).max(-1).values
    low = torch.where(finite, scores, torch.full_like(scores, float('inf'))).min(-1).values
    scale = torch.maximum(high.abs(), low.abs())
    return invalid | ~finite.any(-1) | ((high - low) <= tolerance * scale)


def serve(candidates, choice, fallback, users, support_items, tolerance=1e-6):
    """Scores (B, N) of the method ``choice`` names for the users' K (a K not listed takes the choice of the
    largest listed K below it), with the rows of degenerate users replaced by ``fallback``'s scores; and the
    (B,) bool mask of those users. Every scorer has ``kshot_full_scores(users, support_items)``."""
    k = len(support_items[0]) if len(support_items) else 0
    scores = candidates[value_at_k(choice, k)].kshot_full_scores(users, support_items).float()
    fallback_users = degenerate_users(scores[:, 1:], tolerance)  # column 0 is the padding item
    if fallback_users.any():
        rows = fallback_users.nonzero().squeeze(-1).tolist()
        scores = scores.clone()
        scores[fallback_users] = fallback.kshot_full_scores(users[fallback_users],
                                                            [support_items[i] for i in rows]).float()
    return scores, fallback_users


class RoutedScorer(torch.nn.Module):
    """Scores of the method chosen for the user's K, popularity where those scores are degenerate.

    Args:
        candidates: {method: trained model with ``kshot_full_scores``} (same run split).
        choice: {K: method}, from :func:`route_per_k` on validation results; a K not listed takes the choice of the
            largest listed K below it.
        popularity: the fallback model (e.g. a trained ``TargetPop``).
        tolerance: see :func:`degenerate_users`.

    ``kshot_counters['n_fallback']`` counts the users served by popularity; :func:`recbole_tmcdr.kshot.evaluate_kshot`
    resets it before each K and reports it with that K's metrics.
    """

    def __init__(self, candidates, choice, popularity, tolerance=1e-6):
        super().__init__()
        unknown = sorted(set(choice.values()) - set(candidates))
        if unknown:
            raise ValueError(f'The router chose {unknown}, which are not candidates: {sorted(candidates)}.')
        self.candidates = candidates
        self.choice = dict(choice)
        self.popularity = popularity
        self.tolerance = tolerance
        self.kshot_counters = {}

    def kshot_full_scores(self, users, support_items):
        scores, fallback = serve(self.candidates, self.choice, self.popularity, users, support_items, self.tolerance)
        self.kshot_counters['n_fallback'] = self.kshot_counters.get('n_fallback', 0) + int(fallback.sum())
        return scores
