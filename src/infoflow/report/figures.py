"""Figures from the result tables (matplotlib, PNG)."""

import argparse

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes or CI
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from infoflow.io import atomic_path

SPLIT_LABELS = {"test_id": "ID", "test_ood": "OOD"}


def save(fig, path, dpi):
    """Write `fig` as a PNG that appears only complete, and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def accuracy_figure(table, path, dpi):
    """One panel per task; per method, ID and OOD bars with 95% CI whiskers and per-seed dots."""
    tasks = sorted(table["task"].unique())
    widths = [max(3.0, 0.55 * table.filter(pl.col("task") == task)["method"].n_unique() + 1.0) for task in tasks]  # inches per panel
    fig, axes = plt.subplots(1, len(tasks), figsize=(sum(widths), 4.2), squeeze=False, gridspec_kw={"width_ratios": widths})
    for ax, task in zip(axes[0], tasks):
        rows = table.filter(pl.col("task") == task)
        methods = list(dict.fromkeys(rows["method"]))
        width = 0.8 / len(SPLIT_LABELS)
        for i, (split, label) in enumerate(SPLIT_LABELS.items()):
            part = pl.DataFrame({"method": methods}).join(rows.filter(pl.col("split") == split), on="method", how="left", maintain_order="left")
            x = np.arange(len(methods)) + (i - 0.5) * width
            mean, low, high = (part[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in ("accuracy_mean", "ci95_low", "ci95_high"))
            err = 100 * np.abs(np.vstack([mean - low, high - mean]))
            ax.bar(x, 100 * mean, width, yerr=np.nan_to_num(err), capsize=3, label=label, alpha=0.8)
            for xi, seeds in zip(x, part["per_seed"]):
                values = [100 * float(v) for v in (seeds or "").split()]
                ax.scatter([xi] * len(values), values, color="black", s=8, zorder=3)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=40, ha="right")
        ax.set_ylim(0, 100)
        ax.set_title(f"task: {task}")
        ax.set_ylabel("exact-match accuracy (%)")
        ax.legend(loc="center left", fontsize=8)
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("accuracy",))
    parser.add_argument("--table", required=True, help="CSV from infoflow.report.tables")
    parser.add_argument("--dpi", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    accuracy_figure(pl.read_csv(args.table, schema_overrides={"per_seed": pl.String}), args.out, args.dpi)


if __name__ == "__main__":
    main()
