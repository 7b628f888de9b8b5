"""The report's statistics: the Student-t interval over seeds, the paired bootstrap over seeds and
test items, the two-level bootstrap over run seeds and inner units (prompts, sampling or fit seeds),
and the minimal detectable effect of a design read off its interval.

Every interval is a two-sided 95% interval; bootstrap intervals are percentile intervals.
"""

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats


def add_bootstrap_arguments(parser):
    """The command-line settings every bootstrap of the report takes (config `statistics`)."""
    parser.add_argument("--bootstrap-samples", type=int, required=True, help="bootstrap draws")
    parser.add_argument("--seed", type=int, required=True, help="the bootstraps' random seed")


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


def minimal_detectable_effect(low, high, df=None, power=0.80):
    """The smallest true difference that a two-sided 5% test of this design detects with probability
    `power`: (q_.975 + q_power) x SE, with the SE read off the 95% interval (low, high) as its
    half-width over q_.975. q is the normal quantile for a bootstrap percentile interval (whose
    half-width is 1.96 bootstrap SEs when the draws are about normal), Student-t with `df` degrees of
    freedom for mean_ci95's interval. nan without an interval."""
    if math.isnan(low) or math.isnan(high):
        return math.nan
    quantile = stats.norm.ppf if df is None else (lambda q: stats.t.ppf(q, df))
    return (high - low) / 2 * (1 + quantile(power) / quantile(0.975))


@dataclass(frozen=True)
class Matrix:
    """Values [rows, columns] with their row labels (run seeds) and column labels (test item ids)."""

    rows: tuple
    columns: tuple
    values: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "values", np.asarray(self.values, dtype=float).reshape(len(self.rows), len(self.columns)))

    def take(self, rows, columns):
        """The sub-matrix of the labels `rows` x `columns`, in their order."""
        row_at, column_at = {r: i for i, r in enumerate(self.rows)}, {c: j for j, c in enumerate(self.columns)}
        return self.values[np.ix_([row_at[r] for r in rows], [column_at[c] for c in columns])]

    def __len__(self):
        return len(self.rows)


def shared(first, second):
    """The labels of `first` that `second` has too, in `first`'s order."""
    kept = set(second)
    return [label for label in first if label in kept]


def paired_bootstrap(method, baseline, samples, seed):
    """(difference, low, high) of mean(method - baseline) over the seeds and items both Matrices have
    (paired by label), with its 95% percentile CI from resampling seeds and items together."""
    seeds, items = shared(method.rows, baseline.rows), shared(method.columns, baseline.columns)
    diff = method.take(seeds, items) - baseline.take(seeds, items)
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, diff.shape[0], size=(samples, diff.shape[0]))
    item_draws = rng.integers(0, diff.shape[1], size=(samples, diff.shape[1]))
    means = diff[seed_draws[:, :, None], item_draws[:, None, :]].mean(axis=(1, 2))
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def two_level_bootstrap(sums, counts, samples, seed):
    """Ratio means [samples + 1, curves, columns] of sums / counts [curves, run seeds, inner, columns]
    over the units (run seed, inner unit): row 0 on the data, then one row per draw that resamples the
    run seeds, then the inner units, both with replacement (the same draws for every curve: paired)."""
    rng = np.random.default_rng(seed)
    n_seeds, n_inner = sums.shape[1], sums.shape[2]
    weights = [(np.ones(n_seeds), np.ones(n_inner))]
    for _ in range(samples):
        weights.append((np.bincount(rng.integers(n_seeds, size=n_seeds), minlength=n_seeds),
                        np.bincount(rng.integers(n_inner, size=n_inner), minlength=n_inner)))
    w_seed = np.array([w[0] for w in weights], dtype=float)
    w_inner = np.array([w[1] for w in weights], dtype=float)
    total = np.einsum("bs,bp,mspc->bmc", w_seed, w_inner, sums)
    count = np.einsum("bs,bp,mspc->bmc", w_seed, w_inner, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def two_level_means(grids, samples, seed):
    """The mean curves [samples + 1, curves, columns] of grids [curves, run seeds, inner, columns]
    (every cell one unit of weight), on the data and then on each two-level bootstrap draw."""
    return two_level_bootstrap(grids, np.ones_like(grids), samples, seed)


def percentile_ci(draws):
    """(low, high): the 95% percentile interval over axis 0 of bootstrap draws, ignoring nan draws."""
    return np.nanpercentile(draws, [2.5, 97.5], axis=0)


def bootstrap_estimate(draws):
    """(value, low, high) from draws whose row 0 is the statistic on the data and the rest its
    bootstrap draws; nan bounds when every draw is nan."""
    draws = np.asarray(draws, dtype=float)
    if np.isnan(draws[1:]).all():
        return float(draws[0]), math.nan, math.nan
    low, high = percentile_ci(draws[1:])
    return float(draws[0]), float(low), float(high)


def group_mean(frame, by, columns, sort=True):
    """Per group of the polars DataFrame `frame` by the columns `by` (sorted by them, or with `sort`
    False in order of first appearance): the mean of each of `columns` over its non-missing values
    (NaN counts as missing, as in the analyses' CSV files)."""
    result = frame.group_by(by, maintain_order=True).agg(pl.col(c).fill_nan(None).mean() for c in columns)
    return result.sort(by) if sort else result
