"""Key-distribution shift figure (InfoSteer Fig. 4): the region shares per method of
infoflow.report.key_shift_tables' CSV as stacked bars."""

import argparse

import numpy as np
import polars as pl

from infoflow import cli
from infoflow.report.figures import plt, save  # figures selects the file-only backend
from infoflow.report.key_shift_tables import REGIONS


def figure(summary, path, dpi):
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * summary.height, 3.6))
    bottom = np.zeros(summary.height)
    for region, colour in zip(REGIONS, ("#4575b4", "#fee090", "#d73027")):
        values = 100 * summary[region].to_numpy()
        ax.bar(summary["method"].to_list(), values, bottom=bottom, label=region, color=colour)
        bottom += values
    ax.axhline(25, color="grey", lw=0.6, ls="--")
    ax.axhline(75, color="grey", lw=0.6, ls="--")
    ax.set_ylabel("share of key coefficients (%)")
    ax.set_title("Key regions by the base model's 25th / 75th percentiles")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize=8)
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, help="CSV of infoflow.report.key_shift_tables")
    parser.add_argument("--dpi", type=int, required=True)
    parser.add_argument("--figure", required=True)
    args = parser.parse_args()
    summary = pl.read_csv(args.table, schema_overrides={"method": pl.String, **{r: pl.Float64 for r in REGIONS}})
    figure(summary, args.figure, args.dpi)


if __name__ == "__main__":
    cli.run(main)
