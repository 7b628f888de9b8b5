"""InfoRidge's per-run analysis, read from the activation Parquet files only (never the model).

For every checkpoint, split and layer of one run:
  - predictive information I(Z_l; Y) and incremental gain I(dZ_l; Y) (infoflow.mi) on N examples
    drawn with each of several sampling seeds; Z is the state at the last prompt position, dZ the
    block's residual update, Y the target token's input embedding;
  - early-exit accuracy: the logit-lens prediction of that layer (written at extraction) against
    the target token;
and at the last checkpoint a linear probe per layer (logistic regression on the states of one half
of each split, accuracy on the other half). The last layer read after the final norm is analysed
as its own row (final_norm = True) beside the raw one.
"""

import argparse

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from infoflow import activations, cli, mi, parquet
from infoflow.io import DataError, write_csv

RUN_COLUMNS = ["task", "method", "seed", "point", "step"]


class Checkpoint:
    """One activation file as per-split arrays: [layer rows, examples, d] in a fixed example order."""

    def __init__(self, path):
        table = activations.read(path)
        self.path = path
        self.frame = table.drop_columns(list(activations.VECTOR_COLUMNS)).to_pandas()
        self.vectors = {c: parquet.vectors(table, c) for c in activations.VECTOR_COLUMNS}
        self.tags = self.frame.iloc[0][RUN_COLUMNS].to_dict()

    def splits(self):
        return sorted(self.frame.split.unique())

    def rows(self, split):
        """(layer keys [(layer, final_norm)], row index [keys, examples]) of one split."""
        part = self.frame[self.frame.split == split].sort_values(["final_norm", "layer", "example_id"])
        keys = list(part[["layer", "final_norm"]].drop_duplicates().itertuples(index=False, name=None))
        index = part.index.to_numpy().reshape(len(keys), -1)
        return keys, index


def information(checkpoint, n, seeds, kernel, sigma, alpha):
    """Long table of I(Z;Y) and I(dZ;Y) per split, layer row and sampling seed."""
    records = []
    for split in checkpoint.splits():
        keys, index = checkpoint.rows(split)
        available = index.shape[1]
        if n > available:
            raise DataError(f"{checkpoint.path}: N = {n} examples requested for the MI estimate, {available} exist in {split}")
        for seed in range(seeds):
            pick = index[:, np.random.default_rng(seed).choice(available, n, replace=False)]
            target = checkpoint.vectors["target"][pick[0]]
            for quantity in ("hidden", "residual"):
                values = mi.mutual_information_layers(checkpoint.vectors[quantity][pick], target, kernel=kernel, sigma=sigma, alpha=alpha)
                records += [
                    {**checkpoint.tags, "split": split, "quantity": quantity, "layer": layer, "final_norm": final,
                     "sample_seed": seed, "mi": float(value)}
                    for (layer, final), value in zip(keys, values)
                ]
    return pd.DataFrame(records)


def early_exit(checkpoint):
    """Accuracy of each layer's logit-lens prediction, per split."""
    frame = checkpoint.frame.assign(correct=checkpoint.frame.early_exit_token == checkpoint.frame.target_token)
    table = frame.groupby(["split", "layer", "final_norm"]).correct.agg(["size", "mean"]).reset_index()
    table = table.rename(columns={"size": "n", "mean": "accuracy"})
    return table.assign(**checkpoint.tags)[[*RUN_COLUMNS, "split", "layer", "final_norm", "n", "accuracy"]]


def linear_probes(checkpoint, seed):
    """Held-out accuracy of a logistic-regression probe of the target token on each layer's states."""
    records = []
    for split in checkpoint.splits():
        keys, index = checkpoint.rows(split)
        order = np.random.default_rng(seed).permutation(index.shape[1])
        train, test = order[: len(order) // 2], order[len(order) // 2 :]
        labels = checkpoint.frame.target_token.to_numpy()[index[0]]
        for (layer, final), rows in zip(keys, index):
            states = checkpoint.vectors["hidden"][rows]
            if len(np.unique(labels[train])) > 1:
                probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
                predicted = probe.fit(states[train], labels[train]).predict(states[test])
            else:  # one class: the probe can only predict it
                predicted = np.full(len(test), labels[train][0])
            records.append({**checkpoint.tags, "split": split, "layer": layer, "final_norm": final,
                            "n_train": len(train), "n_test": len(test), "accuracy": float((predicted == labels[test]).mean())})
    return pd.DataFrame(records)


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
    write_csv(args.mi, pd.concat(information_tables, ignore_index=True))
    write_csv(args.early_exit, pd.concat(exit_tables, ignore_index=True))
    write_csv(args.probes, probes)


if __name__ == "__main__":
    cli.run(main)
