"""Key-distribution shift table (InfoSteer Fig. 4): the region shares of every run
(infoflow.infosteer.key_shift), mean over seeds per method, as CSV and Markdown
(infoflow.report.key_shift_figures draws them)."""

import argparse
import json

import polars as pl

from infoflow import cli
from infoflow.io import DataError, write_csv, write_text
from infoflow.report.markdown import percent, table
from infoflow.report.stats import group_mean
from infoflow.report.tables import frame

REGIONS = ("low", "medium", "high")  # the base model's key regions, in the tables' and figure's order


def report(paths):
    """Mean region shares per method (methods in file order) and the number of runs averaged."""
    rows = []
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        if set(result["overall"]) != set(REGIONS):
            raise DataError(f"{path}: expected the shares of the regions {', '.join(REGIONS)}, found {', '.join(result['overall'])}")
        rows.append({**result["tags"], **{region: float(result["overall"][region]) for region in REGIONS}})
    shares = frame(rows)
    seeds = shares.group_by("method", maintain_order=True).agg(pl.col(REGIONS[0]).count().alias("seeds"))
    return seeds.join(group_mean(shares, ["method"], REGIONS, sort=False), on="method", maintain_order="left")


def report_markdown(summary):
    shown = summary.with_columns(pl.Series(region, [percent(x) for x in summary[region]], dtype=pl.String) for region in REGIONS)
    return table(shown, "Share of key coefficients (%) in the base model's low / medium / high regions")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shares", nargs="+", required=True, help="JSON files of infoflow.infosteer.key_shift (base model first)")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    summary = report(args.shares)
    write_csv(args.csv, summary)
    write_text(args.markdown, report_markdown(summary))


if __name__ == "__main__":
    cli.run(main)
