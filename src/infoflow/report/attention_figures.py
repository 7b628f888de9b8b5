"""Attention to signal tokens per layer (InfoRidge Table 2), from infoflow.report.attention_tables'
attention_layers.csv: the mass to signal, noise and the last token per layer with 95% CI bands, one
panel per task and method (rows) and split (columns), the SFT ridge layer marked."""

import argparse

import numpy as np
import polars as pl

from infoflow import cli
from infoflow.report.figures import SPLIT_LABELS, plt, save  # figures selects the file-only backend

SHOWN = {"signal": "signal tokens (S<k>)", "noise": "noise tokens (N<k>)", "last": "the last token itself"}


def attention_figure(layers, path, dpi):
    panels = layers.select("task", "method").unique().sort("task", "method").rows()
    fig, axes = plt.subplots(len(panels), len(SPLIT_LABELS), figsize=(4.4 * len(SPLIT_LABELS), 3.2 * len(panels)), squeeze=False)
    for row, (task, method) in zip(axes, panels):
        for ax, (split, label) in zip(row, SPLIT_LABELS.items()):
            part = layers.filter((pl.col("task") == task) & (pl.col("method") == method) & (pl.col("split") == split))
            for kind, name in SHOWN.items():
                curve = part.filter(pl.col("kind") == kind).sort("layer")
                x = curve["layer"].to_numpy()
                mass, low, high = (curve[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in ("mass", "ci95_low", "ci95_high"))
                line, = ax.plot(x, mass, marker="o", ms=3, label=name)
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
            ridge = part["sft_ridge_layer"].drop_nulls()
            if len(ridge):
                ax.axvline(ridge[0], color="grey", ls="--", lw=1, label="SFT ridge layer (I(Z;Y))")
            ax.set_ylim(0, 1)
            ax.set_title(f"{task}, {method}, {label}: from the prediction position", fontsize=9)
            ax.set_xlabel("layer (attention of block l)")
            ax.set_ylabel("attention mass")
    axes[0, -1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", required=True, help="attention_layers.csv (infoflow.report.attention_tables)")
    parser.add_argument("--dpi", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    layers = pl.read_csv(args.layers, schema_overrides={"task": pl.String, "method": pl.String, "split": pl.String})
    attention_figure(layers, args.out, args.dpi)


if __name__ == "__main__":
    cli.run(main)
