"""The seeded example sample that extraction and flux draw: the same examples for every checkpoint and run."""

import numpy as np

from infoflow.io import DataError


def sample(examples, n, seed, path, purpose="extraction"):
    """A seeded choice of `n` of the examples read from `path`, kept in file order (the same for
    every checkpoint and every run); too few examples is an error naming `purpose`."""
    if n > len(examples):
        raise DataError(f"{path}: {n} examples requested for {purpose}, {len(examples)} exist")
    index = np.random.default_rng(seed).choice(len(examples), n, replace=False)
    return [examples[i] for i in sorted(index)]
