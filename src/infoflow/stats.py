"""Summary statistics for results over seeds."""

import math

from scipy import stats


def mean_ci95(values):
    """(mean, low, high): the mean and its two-sided 95% Student-t interval over independent runs.

    With a single value the interval is undefined and returned as (mean, nan, nan).
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half
