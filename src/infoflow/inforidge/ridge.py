"""InfoRidge's per-run analysis, read from the activation Parquet files only (never the model).

For every checkpoint, split and layer of one run:
  - predictive information I(Z_l; Y) and incremental gain I(dZ_l; Y) (infoflow.inforidge.mi) on N examples
    drawn with each of several sampling seeds; Z is the state at the last prompt position, dZ the
    block's residual update, Y the target token's input embedding;
  - early-exit accuracy: the logit-lens prediction of that layer (written at extraction) against
    the target token;
and at the last checkpoint a linear probe per layer (logistic regression on the states of one half
of each split, accuracy on the other half). The last layer read after the final norm is analysed
as its own row (final_norm = True) beside the raw one.

The activation files are scanned lazily (infoflow.inforidge.activations.scan): the scalar columns
once, then only the vector columns and split each analysis uses.
"""

import argparse

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from infoflow import cli
from infoflow.inforidge import activations, mi
from infoflow.io import DataError, write_csv

RUN_COLUMNS = ["task", "method", "seed", "point", "step"]
ORDER = ["final_norm", "layer", "example_id"]  # the rows of one split: layer rows in turn, each in example order


class Checkpoint:
    """One activation file, per split as [layer rows, examples, ...] arrays in a fixed example order.

    The scalar columns are read at once (`frame`); a vector column of a split when first asked for
    (`vectors`), then kept.
    """

    def __init__(self, path):
        self.path = path
        self.frame = activations.scan(path, list(activations.SCALAR_COLUMNS))
        self.tags = self.frame.select(RUN_COLUMNS).row(0, named=True)
        self.loaded = {}

    def splits(self):
        return sorted(self.frame["split"].unique())

    def rows(self, split):
        """(layer keys [(layer, final_norm)], the split's scalar rows in ORDER: len(keys) blocks of its examples)."""
        part = self.frame.filter(pl.col("split") == split).sort(ORDER)
        keys = part.select("layer", "final_norm").unique(maintain_order=True).rows()
        return keys, part

    def examples(self, split):
        """The number of examples of one split (each layer row holds all of them)."""
        keys, part = self.rows(split)
        return len(part) // len(keys)

    def vectors(self, split, column):
        """The vector `column` of one split as a float32 array [layer rows, examples, d], in the order of `rows`."""
        if (split, column) not in self.loaded:
            keys, _ = self.rows(split)
            part = activations.scan(self.path, [*ORDER, column], pl.col("split") == split).sort(ORDER)
            vectors = part[column].to_numpy()
            self.loaded[split, column] = vectors.reshape(len(keys), -1, vectors.shape[-1])
        return self.loaded[split, column]


def information(checkpoint, n, seeds, kernel, sigma, alpha):
    """Long table of I(Z;Y) and I(dZ;Y) per split, layer row and sampling seed."""
    records = []
    for split in checkpoint.splits():
        keys, _ = checkpoint.rows(split)
        available = checkpoint.examples(split)
        if n > available:
            raise DataError(f"{checkpoint.path}: N = {n} examples requested for the MI estimate, {available} exist in {split}")
        for seed in range(seeds):
            pick = np.random.default_rng(seed).choice(available, n, replace=False)
            target = checkpoint.vectors(split, "target")[0, pick]
            for quantity in ("hidden", "residual"):
                values = mi.mutual_information_layers(checkpoint.vectors(split, quantity)[:, pick], target, kernel=kernel, sigma=sigma, alpha=alpha)
                records += [
                    {**checkpoint.tags, "split": split, "quantity": quantity, "layer": layer, "final_norm": final,
                     "sample_seed": seed, "mi": float(value)}
                    for (layer, final), value in zip(keys, values)
                ]
    return pl.DataFrame(records)


def early_exit(checkpoint):
    """Accuracy of each layer's logit-lens prediction, per split."""
    keys = ["split", "layer", "final_norm"]
    correct = pl.col("early_exit_token") == pl.col("target_token")
    table = checkpoint.frame.group_by(keys).agg(n=pl.len().cast(pl.Int64), accuracy=correct.mean()).sort(keys)
    return table.with_columns(**{k: pl.lit(v) for k, v in checkpoint.tags.items()}).select(*RUN_COLUMNS, *keys, "n", "accuracy")


def linear_probes(checkpoint, seed):
    """Held-out accuracy of a logistic-regression probe of the target token on each layer's states."""
    records = []
    for split in checkpoint.splits():
        keys, part = checkpoint.rows(split)
        examples = checkpoint.examples(split)
        order = np.random.default_rng(seed).permutation(examples)
        train, test = order[: len(order) // 2], order[len(order) // 2 :]
        labels = part["target_token"].to_numpy()[:examples]  # the first layer row's; every row's are the same
        for (layer, final), states in zip(keys, checkpoint.vectors(split, "hidden")):
            if len(np.unique(labels[train])) > 1:
                probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
                predicted = probe.fit(states[train], labels[train]).predict(states[test])
            else:  # one class: the probe can only predict it
                predicted = np.full(len(test), labels[train][0])
            records.append({**checkpoint.tags, "split": split, "layer": layer, "final_norm": final,
                            "n_train": len(train), "n_test": len(test), "accuracy": float((predicted == labels[test]).mean())})
    return pl.DataFrame(records)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activations", nargs="+", required=True, help="the run's Parquet files, in checkpoint order")
    parser.add_argument("--examples", type=int, required=True, help="N examples per MI estimate")
    parser.add_argument("--sample-seeds", type=int, required=True)
    parser.add_argument("--kernel", required=True, choices=mi.KERNELS)
    parser.add_argument("--sigma", type=float, required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--probe-seed", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--mi", required=True, help="CSV of I(Z;Y) and I(dZ;Y)")
    parser.add_argument("--early-exit", required=True, help="CSV of early-exit accuracy")
    parser.add_argument("--probes", required=True, help="CSV of linear-probe accuracy (last checkpoint)")
    args = parser.parse_args()
    cli.setup(args.threads)

    information_tables, exit_tables = [], []
    # BLAS (scikit-learn's probes) to the job's threads too: oversubscribed cores made each fit 20x slower.
    with threadpool_limits(args.threads):
        for path in args.activations:
            checkpoint = Checkpoint(path)
            information_tables.append(information(checkpoint, args.examples, args.sample_seeds, args.kernel, args.sigma, args.alpha))
            exit_tables.append(early_exit(checkpoint))
        probes = linear_probes(checkpoint, args.probe_seed)
    write_csv(args.mi, pl.concat(information_tables))
    write_csv(args.early_exit, pl.concat(exit_tables))
    write_csv(args.probes, probes)


if __name__ == "__main__":
    cli.run(main)
