"""Statistics of a benchmark report: means with CIs over seeds, paired tests with effect sizes, Holm correction.

* :func:`summarize`: mean and 95% CI (t-distribution) of one metric over seeds.
* :func:`paired_test`: paired t-test over the seeds two models share (``scipy.stats.ttest_rel``), with the mean
  paired difference and its 95% CI as the effect size. With fewer than :data:`MIN_PAIRS` pairs no test is made
  (one degree of freedom gives a t-test no power and a CI spanning most of the metric's range).
* :func:`holm`: Holm's step-down adjustment of a family of p-values (controls the family-wise error rate).
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

ALPHA = 0.05
MIN_PAIRS = 3


@dataclass
class Summary:
    """Mean and 95% CI (t-distribution) of one metric over seeds."""
    mean: float
    n: int
    sd: float = None
    half_width: float = None          # t_{0.975, n-1} * sd / sqrt(n); None for n = 1
    by_seed: dict = field(default_factory=dict)

    @property
    def low(self):
        return self.mean - (self.half_width or 0.0)

    @property
    def high(self):
        return self.mean + (self.half_width or 0.0)


def finite(value):
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def summarize(values_by_seed):
    """:class:`Summary` of ``{seed: value}`` (non-finite values dropped); None if nothing is left."""
    by_seed = {seed: float(v) for seed, v in values_by_seed.items() if finite(v)}
    if not by_seed:
        return None
    values = np.array(list(by_seed.values()), dtype=float)
    n = len(values)
    if n == 1:
        return Summary(mean=float(values[0]), n=1, by_seed=by_seed)
    sd = float(values.std(ddof=1))
    half_width = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    return Summary(mean=float(values.mean()), n=n, sd=sd, half_width=half_width, by_seed=by_seed)


@dataclass
class PairedTest:
    """a - b over the common seeds: mean difference, its 95% CI, raw p and (once the family is known) Holm's p."""
    n: int
    diff: float = None
    ci_low: float = None
    ci_high: float = None
    p: float = None
    alternative: str = 'two-sided'
    p_holm: float = None

    @property
    def tested(self):
        return self.p is not None

    @property
    def significant(self):
        """Significant after Holm's correction (raw p if the test was never put in a family)."""
        p = self.p_holm if self.p_holm is not None else self.p
        return p is not None and p < ALPHA

    def ci_text(self, digits=4):
        if self.diff is None:
            return '–'
        if self.ci_low is None:
            return f'{self.diff:+.{digits}f}'
        return f'{self.diff:+.{digits}f} [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]'


def paired_test(a_by_seed, b_by_seed, alternative='two-sided'):
    """Paired t-test of a vs b over their common seeds (``alternative`` as in ``scipy.stats.ttest_rel``: 'greater'
    tests a > b). No test (p None) below :data:`MIN_PAIRS` pairs or when every difference is the same (the t
    statistic is then 0/0 or infinite). The CI is two-sided 95% whatever the alternative."""
    seeds = sorted(set(a_by_seed) & set(b_by_seed))
    a = np.array([a_by_seed[s] for s in seeds], dtype=float)
    b = np.array([b_by_seed[s] for s in seeds], dtype=float)
    result = PairedTest(n=len(seeds), alternative=alternative)
    if not seeds:
        return result
    result.diff = float((a - b).mean())
    if len(seeds) < MIN_PAIRS or np.ptp(a - b) == 0:  # equal differences: t is 0/0 or infinite, no test
        return result
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        p = float(stats.ttest_rel(a, b, alternative=alternative).pvalue)
        ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    if math.isfinite(ci.low):
        result.ci_low, result.ci_high = float(ci.low), float(ci.high)
    result.p = p if math.isfinite(p) else None
    return result


def holm(p_values):
    """Holm-adjusted p-values, in the input order (None stays None and is not counted in the family)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))  # step-down: adjusted p never decreases with rank
        adjusted[i] = running
    return adjusted


def adjust_family(tests):
    """Set ``p_holm`` on every :class:`PairedTest` of one family (the tests a report draws conclusions from)."""
    tests = list(tests)
    for test, p in zip(tests, holm([t.p for t in tests])):
        test.p_holm = p
    return tests


def fmt_p(p):
    if p is None:
        return 'n/a'
    return f'{p:.2e}' if p < 1e-3 else f'{p:.3f}'
