"""The memory-vector surrogates figure from infoflow.report.surrogate_tables' categories CSV: per layer
(rows) and kind of token (columns), how much more often than in the vocabulary a kind is among the
top tokens of every memory vector (left) and of the most specialised vectors (right), on a log2 scale."""

import argparse

import numpy as np
import polars as pl

from infoflow import cli
from infoflow.report.figures import plt, save  # figures selects the file-only backend


def ratio_grid(categories, vectors):
    """([layers, kinds] of log2(share / base rate), layers, kinds) for one set of vectors ('all' or 'top N')."""
    rows = categories.filter(pl.col("vectors") == vectors)
    layers, kinds = sorted(rows["layer"].unique()), list(dict.fromkeys(rows["category"]))
    grid = np.full((len(layers), len(kinds)), np.nan)
    for layer, kind, ratio in rows.select("layer", "category", "ratio").iter_rows():
        grid[layers.index(layer), kinds.index(kind)] = np.log2(ratio) if ratio and ratio > 0 else np.nan
    return grid, layers, kinds


def surrogate_figure(categories, path, dpi):
    sets = list(dict.fromkeys(categories["vectors"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.6 * len(sets), 3.8), squeeze=False)
    for ax, vectors in zip(axes[0], sets):
        grid, layers, kinds = ratio_grid(categories, vectors)
        image = ax.imshow(grid, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-3, vmax=3)
        ax.set_xticks(range(len(kinds)), kinds, fontsize=8, rotation=30)
        ax.set_yticks(range(len(layers)), layers, fontsize=8)
        ax.set_xlabel("kind of top token")
        ax.set_ylabel("layer")
        ax.set_title(f"{vectors} vectors: log2(share / vocabulary's)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--categories", required=True, help="surrogate_categories.csv of infoflow.report.surrogate_tables")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--figure", required=True)
    args = parser.parse_args()
    cli.setup()
    surrogate_figure(pl.read_csv(args.categories), args.figure, args.dpi)


if __name__ == "__main__":
    cli.run(main)
