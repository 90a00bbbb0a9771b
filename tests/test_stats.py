"""The experiments' shared statistics: the detectable difference is the one a paired t-test finds with the stated
power (Monte Carlo), and the bootstrap CI is the percentile interval."""

import numpy as np
import pytest
from scipy.stats import ttest_1samp

from wrec.experiments._stats import bootstrap_ci, detectable_difference


@pytest.mark.parametrize("n", [5, 12])
def test_a_true_difference_of_the_detectable_size_is_found_with_80_percent_power(n):
    sd = 0.3
    rng = np.random.default_rng(0)
    template = rng.standard_normal(n)
    template = (template - template.mean()) / template.std(ddof=1) * sd  # sample sd exactly 0.3
    delta = detectable_difference(template)
    draws = rng.normal(delta, sd, (20_000, n))
    found = ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05
    assert found.mean() == pytest.approx(0.8, abs=0.015)  # Monte Carlo s.e. 0.003
    # a quarter of that difference is mostly missed
    assert (ttest_1samp(draws - 0.75 * delta, 0.0, axis=1).pvalue < 0.05).mean() < 0.2


def test_detectable_difference_edge_cases():
    assert np.isnan(detectable_difference(np.array([1.0])))
    assert detectable_difference(np.array([2.0, 2.0, 2.0])) == 0.0
    assert detectable_difference(np.array([0.1, np.nan, -0.1, 0.3])) == pytest.approx(
        detectable_difference(np.array([0.1, -0.1, 0.3])))


def test_bootstrap_ci_brackets_the_mean_and_needs_two_values():
    v = np.random.default_rng(1).normal(1.0, 0.5, 40)
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi and hi - lo == pytest.approx(2 * 1.96 * 0.5 / np.sqrt(40), rel=0.25)
    assert all(np.isnan(bootstrap_ci(np.array([1.0]))))
