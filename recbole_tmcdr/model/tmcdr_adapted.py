"""TMCDRAdapted: TMCDR whose cold users are scored the way its meta-objective trains theta (beyond the paper).

Reference for TMCDR: Yongchun Zhu et al. "Transfer-Meta Framework for Cross-domain Recommendation to Cold-Start
Users." SIGIR 2021.

TMCDR's meta-objective makes theta good AFTER one inner step on a group of users, while the paper scores cold
users with f_theta itself. This variant scores them with theta' = theta after the inner step on warm groups
(``meta_scoring: adapted``): before every validation the trainer adapts theta on each group of a fresh
meta-batch of warm users and averages the adapted parameters; the best validated theta' is kept with the model.
Registered under its own names (``TMCDRAdapted_MF`` / ``_BPR`` / ``_ListRankMF`` / ``_CML``) so that it never
replaces TMCDR in the paper's comparison.
"""

from recbole_tmcdr.model.tmcdr import TMCDR
from recbole_tmcdr.registry import register_model


@register_model('TMCDRAdapted_MF', 'TMCDRAdapted_BPR', 'TMCDRAdapted_ListRankMF', 'TMCDRAdapted_CML')
class TMCDRAdapted(TMCDR):
    """TMCDR scored with the inner-step-adapted theta' (``meta_scoring: adapted`` in its YAML)."""

    yaml_bases = ('TMCDR',)  # every key of TMCDR.yaml applies; TMCDRAdapted.yaml changes the scoring
    # trains exactly what TMCDR trains (meta_scoring is one of its inference_keys): the benchmark trains a
    # TMCDRAdapted_X run together with the TMCDR_X run of the same scenario and seed (benchmark.training_units)
    shares_training_with = TMCDR
