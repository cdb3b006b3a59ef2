"""K-shot warm-up evaluation of cold test users (beyond the paper).

For each K, every cold test user with at least K+1 target interactions reveals the first K of them (by
timestamp when the scenario has one, else in an order shuffled with the seed) as SUPPORT; the model scores
all target items (a model may use the support, e.g. TMCDR's test-time adaptation), the support items are
masked like history, and RecBole's evaluator scores the remaining interactions. Users with fewer than K+1
interactions are left out of that K and counted.

The same evaluation runs on the cold VALIDATION users (pass the validation loader), so that anything chosen per K
(the fold-in settings, :func:`select_per_k` and :func:`choose_foldin`; the method a router serves) is chosen without
the test users.
"""

import itertools
from collections import OrderedDict
from logging import getLogger

import numpy as np
import torch
from tqdm import tqdm

from recbole_tmcdr.model.foldin import value_at_k

DEFAULT_KS = (0, 1, 3, 5, 10)


def per_user_rows(users, items, shuffle_seed=None):
    """{user: items in file order} (file order is time order when the scenario has timestamps)."""
    order = np.argsort(users, kind='stable')
    users, items = users[order], items[order]
    boundaries = np.flatnonzero(np.diff(users)) + 1
    grouped = {}
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    for user_items, user in zip(np.split(items, boundaries), users[np.r_[0, boundaries]] if len(users) else []):
        if rng is not None:
            user_items = rng.permutation(user_items)
        grouped[int(user)] = user_items
    return grouped


@torch.no_grad()
def evaluate_kshot(trainer, test_data, ks=DEFAULT_KS, batch_users=256, model=None):
    """Metrics per K on the cold users of ``test_data`` (the test loader, or the validation loader):
    {K: {metric: value, 'n_users': .., 'n_excluded': ..}}. ``model``: another scorer of the same split (e.g. a
    :class:`recbole_tmcdr.router.RoutedScorer`) evaluated with ``trainer``'s evaluator; default ``trainer.model``.
    A scorer with a dict ``kshot_counters`` (a router: ``n_fallback``) has it emptied before each K, and what it
    counted while scoring that K is added to that K's results."""
    model, config = model or trainer.model, trainer.config
    counters = getattr(model, 'kshot_counters', None)
    model.eval()
    dataset = test_data.dataset
    has_time = bool((config['scenario_stats'] or {}).get('target_has_timestamp'))
    rows = per_user_rows(dataset.inter_feat[dataset.uid_field].numpy(), dataset.inter_feat[dataset.iid_field].numpy(),
                         shuffle_seed=None if has_time else config['seed'])
    results = OrderedDict()
    for k in tqdm(ks, desc='K-shot evaluation', unit='K', disable=not config['show_progress'], leave=False):
        users = [u for u, items in rows.items() if len(items) >= k + 1]
        if counters is not None:
            counters.clear()
        for start in range(0, len(users), batch_users):
            batch = users[start:start + batch_users]
            support = [torch.as_tensor(rows[u][:k], dtype=torch.long) for u in batch]
            scores = model.kshot_full_scores(torch.as_tensor(batch, device=config['device']), support).float()
            scores[:, 0] = -np.inf  # padding item
            positive_u, positive_i = [], []
            for row, (user, items) in enumerate(zip(batch, support)):
                scores[row, items] = -np.inf
                query = rows[user][k:]
                positive_u.append(np.full(len(query), row))
                positive_i.append(query)
            trainer.eval_collector.eval_batch_collect(
                scores, None, torch.as_tensor(np.concatenate(positive_u)), torch.as_tensor(np.concatenate(positive_i)))
        if not users:  # the start-up check (config.check_data_against_config) rules this out for the split files
            getLogger().warning(f'K-shot K={k}: no cold test user has {k + 1} target interactions; nothing to evaluate.')
            results[k] = {'n_users': 0, 'n_excluded': len(rows)}
            continue
        trainer.eval_collector.model_collect(model)
        metrics = trainer.evaluator.evaluate(trainer.eval_collector.get_data_struct())
        results[k] = {**{name: float(v) for name, v in metrics.items()},
                      'n_users': len(users), 'n_excluded': len(rows) - len(users), **(counters or {})}
    return results


FOLDIN_SETTINGS = ('steps', 'lr', 'prior_weight')


def select_per_k(trainer, valid_data, ks, candidates, metric=None):
    """Fold-in settings chosen per K on the cold VALIDATION users.

    ``candidates`` is a list of dicts over :data:`FOLDIN_SETTINGS` (e.g. ``{'steps': 10, 'lr': 0.1,
    'prior_weight': 0.1}``; a setting a candidate leaves out keeps the model's own value); each is evaluated with
    :func:`evaluate_kshot` on ``valid_data``, and per K the one with the best ``metric`` (default: the run's
    ``valid_metric``) wins. Returns ``({K: chosen candidate}, {K: its validation metrics})``; ``{setting: {K:
    value}}`` of the chosen ones is what ``kshot_foldin_<setting>`` accepts. The model's fold-in settings are restored afterwards.
    """
    foldin = trainer.model.foldin
    metric = (metric or trainer.config['valid_metric']).lower()
    saved = {name: getattr(foldin, name) for name in FOLDIN_SETTINGS}
    chosen, chosen_results = {}, {}
    try:
        for candidate in candidates:
            for name, value in saved.items():
                setattr(foldin, name, value)
            for name, value in candidate.items():
                if name not in FOLDIN_SETTINGS:
                    raise ValueError(f"Unknown fold-in setting '{name}'; settings are {', '.join(FOLDIN_SETTINGS)}.")
                setattr(foldin, name, value)
            for k, metrics in evaluate_kshot(trainer, valid_data, ks=ks).items():
                if metric in metrics and (k not in chosen_results or metrics[metric] > chosen_results[k][metric]):
                    chosen[k], chosen_results[k] = dict(candidate), metrics
    finally:
        for name, value in saved.items():
            setattr(foldin, name, value)
    return chosen, chosen_results


def foldin_grid(search):
    """The fold-in settings a search tries: every combination of ``search`` ({setting: [values]}, the
    ``kshot_foldin_search`` key), in order; the combinations with 0 steps once, as ``{'steps': 0}`` (step size and
    prior weight then change nothing)."""
    names = list(search)
    candidates = []
    for values in itertools.product(*(search[name] for name in names)):
        candidate = dict(zip(names, values))
        candidate = {'steps': 0} if candidate.get('steps') == 0 else candidate
        if candidate not in candidates:
            candidates.append(candidate)
    return candidates


def choose_foldin(trainer, valid_data, ks, search):
    """Fold-in settings of ``trainer.model`` chosen per K on the cold VALIDATION users among :func:`foldin_grid`
    ``(search)``, and set on the model as ``{K: value}`` mappings (a K no validation user reached takes the choice
    of the largest K below it). Returns ``{K: {setting: value}}`` as set, or None (and changes nothing) when
    ``search`` is empty or the model does not fold in (its ``folds_in`` is false: TargetPop, ContentGenre)."""
    model = trainer.model
    if not search or not getattr(model, 'folds_in', False):
        return None
    chosen, _ = select_per_k(trainer, valid_data, ks, foldin_grid(search))
    if not chosen:
        return None
    foldin = model.foldin
    for name in FOLDIN_SETTINGS:
        own = getattr(foldin, name)
        setattr(foldin, name, {k: settings.get(name, value_at_k(own, k)) for k, settings in chosen.items()})
    return {k: {name: value_at_k(getattr(foldin, name), k) for name in FOLDIN_SETTINGS} for k in chosen}
