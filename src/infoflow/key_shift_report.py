"""Key-distribution shift report (InfoSteer Fig. 4): the region shares of every run (key_shift.py),
as a table (mean over seeds per method) and a stacked bar figure."""

import argparse
import json

import numpy as np
import pandas as pd

from infoflow import cli
from infoflow.figures import plt, save  # figures selects the file-only backend
from infoflow.io import write_csv, write_text
from infoflow.key_shift import REGIONS
from infoflow.tables import markdown, percent


def report(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        rows.append({**result["tags"], **result["overall"]})
    table = pd.DataFrame(rows).groupby("method", sort=False)[list(REGIONS)].agg(["mean", "count"])
    summary = pd.DataFrame({"method": table.index, "seeds": table[("low", "count")].to_numpy()})
    for region in REGIONS:
        summary[region] = table[(region, "mean")].to_numpy()
    return summary


def figure(summary, path, dpi):
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(summary), 3.6))
    bottom = np.zeros(len(summary))
    for region, colour in zip(REGIONS, ("#4575b4", "#fee090", "#d73027")):
        values = 100 * summary[region].to_numpy()
        ax.bar(summary.method, values, bottom=bottom, label=region, color=colour)
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
    parser.add_argument("--shares", nargs="+", required=True, help="JSON files of key_shift.py (base model first)")
    parser.add_argument("--dpi", type=int, required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--figure", required=True)
    args = parser.parse_args()
    summary = report(args.shares)
    write_csv(args.csv, summary)
    shown = summary.assign(**{r: summary[r].map(percent) for r in REGIONS})
    write_text(args.markdown, markdown(shown, "Share of key coefficients (%) in the base model's low / medium / high regions"))
    figure(summary, args.figure, args.dpi)


if __name__ == "__main__":
    cli.run(main)
