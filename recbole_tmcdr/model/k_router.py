"""KRouter: per K revealed target interactions, serve the candidate model that is best on the cold VALIDATION users
at that K, and popularity to the users whose routed scores carry no ranking (beyond the papers).

No single method leads along the interaction-count axis (docs/COLD_START_STACK.md, "Cold-to-warm routing"): a
cross-domain map at K=0, fold-in or meta-learning after a few interactions, collaborative filtering later. The
router's curve is the upper envelope of its candidates' curves as the validation users see it; whether it reaches
the envelope on the test users is what a cold-to-warm benchmark measures.

* **Candidates** (``router_candidates``; ``router_fallback`` too, when it is not one of them) are registered models.
  Each is built on the router's split, as ``run_recbole_cdr(model=<candidate>, ...)`` with the router's settings
  would build it (:func:`recbole_tmcdr.quick_start.prepare_run`): the same scenario and seed, every setting the user
  gave the router (config files, ``config_dict``, command line) except the router's own keys (those below,
  ``train_epochs``), the candidate's own YAML, and ``router_candidate_settings[<candidate>]`` on top.
  :class:`~recbole_tmcdr.trainer.k_router_trainer.KRouterTrainer` trains each with its own trainer (the pre-training
  cache is shared: EMCDR_MF, TMCDR_MF and PTUPCDR pre-train once), unless an identical run (same model, resolved
  settings, code, training and validation rows: :mod:`recbole_tmcdr.trained_models`) has stored its trained model
  and that model scores on the cold validation users what the run recorded: it is then reused (listed in
  ``routing['reused']``; ``router_reuse_trained: False`` trains every candidate). A candidate trains with its YAML's
  hyperparameters: a benchmark's search does not reach inside the router.
* **Choice.** After training, each candidate's fold-in settings are chosen per K (``kshot_foldin_search``) and its
  K-shot results computed on the cold VALIDATION users, at the router's ``kshot`` (K=0 only when unset);
  :func:`~recbole_tmcdr.router.route_per_k` picks per K the best by ``router_metric``. A K without a choice (no
  validation user has K+1 interactions) takes the choice of the largest K below it. Test users are never read.
* **Confidence signal.** A user's routed scores are degenerate (:func:`~recbole_tmcdr.router.degenerate_users`)
  when one is NaN or +inf, none is finite, or they are near-constant: ``max - min <= router_tolerance x max |score|``
  over the target items. That user is served ``router_fallback``'s scores instead, and counted: ``n_fallback`` in
  each K's K-shot results.
* **Unavailable candidates.** A candidate the scenario cannot serve (:class:`~recbole_tmcdr.validation.
  NotApplicableError`, e.g. ContentGenre without item content) is an error naming it and the fix, unless
  ``router_skip_unavailable: True``: it is then left out (logged, and listed in ``routing['skipped']``). Any other
  error of a candidate's settings is always an error naming the candidate.

Before it is fitted, the router serves the fallback at every K. Its result (``routing_summary``, ``routing`` in
``run_recbole_cdr``'s result and the benchmark's record) holds the choice per K, each candidate's validation score
per K, the fold-in settings chosen per candidate, the reused and the skipped candidates.
"""

import contextlib
import copy
import sys
from logging import getLogger

import torch
from torch import nn

from recbole_tmcdr.model.cold_start_recommender import ColdStartRecommender
from recbole_tmcdr.registry import MODELS, RegistryError, register_model
from recbole_tmcdr.router import route_per_k, serve
from recbole_tmcdr.validation import ConfigError, NotApplicableError, Rule, computed_metrics, non_negative


def _distinct_names(value):
    return len(value) > 0 and all(isinstance(n, str) and n for n in value) and len(set(value)) == len(value)


@contextlib.contextmanager
def command_line_read_once():
    """RecBole's config reads ``--key=value`` from ``sys.argv``. The router's config has read them (its settings
    hold them, and pass them on without the router's own keys); a candidate's config must not read them again."""
    saved = sys.argv
    sys.argv = sys.argv[:1]
    try:
        yield
    finally:
        sys.argv = saved


@register_model('KRouter')
class KRouter(ColdStartRecommender):
    """Per K the candidate best on cold validation users; the fallback for users with degenerate scores."""

    trainer = 'KRouterTrainer'
    reuses_single_runs = True  # a benchmark runs it after the single runs whose trained candidates it reuses
    config_rules = {
        'router_candidates': Rule('list', _distinct_names, 'of distinct registered model names, not empty'),
        'router_fallback': Rule('str', bool, 'naming a registered model'),
        'router_metric': Rule('str', nullable=True),
        'router_tolerance': Rule('float', non_negative, '>= 0'),
        'router_candidate_settings': Rule('dict', lambda v: all(isinstance(s, dict) for s in v.values()),
                                          'mapping candidate names to dicts of settings'),
        'router_skip_unavailable': Rule('bool'),
        'router_reuse_trained': Rule('bool'),
    }
    # Keys of the router that its candidates do not receive (a candidate's train_epochs comes from its own YAML).
    OWN_KEYS = frozenset(config_rules) | {'model', 'train_epochs', 'benchmark_search_space'}

    @classmethod
    def check_config(cls, config):
        """Start-up check (before any data is prepared): the candidates and the fallback are registered models
        other than routers, router_candidate_settings names only them, router_metric is computed."""
        names = [*config['router_candidates'], config['router_fallback']]
        for name in names:
            if name not in MODELS:
                return f'KRouter: {MODELS.unknown_message(name)}'
            if issubclass(MODELS.get(name), KRouter):
                return f"KRouter: '{name}' is a router; a router cannot be a candidate or the fallback."
        extra = sorted(set(config['router_candidate_settings']) - set(names))
        if extra:
            return (f"router_candidate_settings names {extra}, which are neither router_candidates "
                    f"({', '.join(config['router_candidates'])}) nor router_fallback ({config['router_fallback']}).")
        metric, computed = config['router_metric'] or config['valid_metric'], computed_metrics(config)
        if str(metric).lower() not in {name.lower() for name in computed}:
            return (f"The 'router_metric' parameter must be one of the computed metrics {', '.join(computed)} "
                    f"(from 'metrics' and 'topk'). Got {metric!r} instead.")
        return None

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.fallback_name = config['router_fallback']
        self.candidate_names = list(config['router_candidates'])
        self.tolerance = config['router_tolerance']
        self.metric = (config['router_metric'] or config['valid_metric']).lower()
        self.ks = list(config['kshot'] or [0])
        self.skipped = {}
        self.runs = {}  # name -> recbole_tmcdr.quick_start.Run: config, data and model of each candidate
        for name in dict.fromkeys([*self.candidate_names, self.fallback_name]):
            run = self.build_candidate(config, name, skippable=name != self.fallback_name)
            if run is not None:
                self.runs[name] = run
        self.candidate_names = [name for name in self.candidate_names if name in self.runs]
        if not self.candidate_names:
            raise ConfigError(f'KRouter has no candidate left: every one was skipped ({self.skipped}).')
        self.candidates = nn.ModuleDict({name: run.model for name, run in self.runs.items()})
        self.choice = {}        # K -> candidate, set by route(); empty = the fallback at every K
        self.routing = {}       # what route() saw and chose, for the result
        self.kshot_counters = {}  # n_fallback while scoring (kshot.evaluate_kshot empties it per K)
        # RecBole's trainer and checkpoints expect at least one parameter of the model's own.
        self.fake_parameter = nn.Parameter(torch.zeros(1))

    def build_candidate(self, config, name, skippable):
        """The candidate's :class:`~recbole_tmcdr.quick_start.Run` on the router's split, or None when it is
        skipped (``router_skip_unavailable`` and the scenario cannot serve it)."""
        from recbole_tmcdr.data import ScenarioDataError
        from recbole_tmcdr.quick_start import prepare_run
        role = 'candidate' if skippable else 'router_fallback'
        try:
            settings = {key: copy.deepcopy(value) for key, value in config.external_config_dict.items()
                        if key not in self.OWN_KEYS}
            settings.update(copy.deepcopy(config['router_candidate_settings'].get(name, {})))
            with command_line_read_once():
                return prepare_run(name, config_dict=settings, log=False)
        except NotApplicableError as error:
            if skippable and config['router_skip_unavailable']:
                self.skipped[name] = str(error)
                getLogger().warning(f'KRouter leaves out the candidate {name}: {error}')
                return None
            fix = ('Remove it from router_candidates, or set router_skip_unavailable: True to leave out the '
                   'candidates a scenario cannot serve.' if skippable else 'Choose another router_fallback.')
            raise ConfigError(f"KRouter's {role} '{name}' cannot run on this scenario: {error} {fix}") from error
        except (ConfigError, RegistryError, ScenarioDataError) as error:
            raise ConfigError(f"KRouter's {role} '{name}': {error} (its own settings go in "
                              f'router_candidate_settings: {{{name}: {{...}}}})') from error

    # ----- the choice
    def route(self, valid_results):
        """Choose per K among the candidates from ``valid_results`` ({candidate: {K: metrics}} on the cold
        VALIDATION users) and serve that choice from now on."""
        choice = route_per_k({name: valid_results[name] for name in self.candidate_names}, self.metric)
        if not choice:
            raise RuntimeError(f'KRouter: no candidate has a validation {self.metric} at any K in {self.ks}.')
        self.choice = choice
        self.routing.update(metric=self.metric, choice=dict(choice), valid={
            name: {int(k): m.get(self.metric) for k, m in per_k.items() if m.get('n_users')}
            for name, per_k in valid_results.items()})

    def routing_summary(self):
        return {'choice': dict(self.choice), 'candidates': list(self.candidate_names), 'fallback': self.fallback_name,
                'skipped': dict(self.skipped), **{k: v for k, v in self.routing.items() if k != 'choice'}}

    def get_extra_state(self):
        return {'choice': {int(k): v for k, v in self.choice.items()}}

    def set_extra_state(self, state):
        self.choice = dict((state or {}).get('choice') or {})

    # ----- scoring
    def calculate_loss(self, interaction):
        raise RuntimeError('KRouter trains nothing itself: KRouterTrainer trains its candidates.')

    def kshot_full_scores(self, users, support_items):
        choice = self.choice or {0: self.fallback_name}
        scores, fallback = serve(self.candidates, choice, self.candidates[self.fallback_name], users, support_items,
                                 self.tolerance)
        self.kshot_counters['n_fallback'] = self.kshot_counters.get('n_fallback', 0) + int(fallback.sum())
        return scores

    def full_sort_predict(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        return self.kshot_full_scores(users, [users.new_empty(0)] * len(users)).view(-1)

    def predict(self, interaction):
        users, items = interaction[self.TARGET_USER_ID], interaction[self.TARGET_ITEM_ID]
        scores = self.kshot_full_scores(users, [users.new_empty(0)] * len(users))
        return scores.gather(1, items.unsqueeze(-1)).squeeze(-1)
