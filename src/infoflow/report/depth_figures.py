"""The depth threshold figure from infoflow.report.depth_tables' CSVs: I(Z;Y) against relative depth,
a curve per base-model depth with its 95% band and its inner peak marked, and the drop from the inner
peak to the last layer per depth with its CI."""

import argparse

import polars as pl

from infoflow import cli
from infoflow.report.figures import plt, save  # figures selects the file-only backend


def depth_figure(summary, curves, path, dpi):
    """Per task (rows): the curves panel and the drops panel."""
    tasks = sorted(summary["task"].unique())
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3.6 * len(tasks)), squeeze=False, gridspec_kw={"width_ratios": [2, 1]})
    for (left, right), task in zip(axes, tasks):
        rows = summary.filter(pl.col("task") == task).sort("layers")
        for row in rows.iter_rows(named=True):
            curve = curves.filter((pl.col("task") == task) & (pl.col("layers") == row["layers"])).sort("layer")
            x = curve["relative_depth"].to_numpy()
            line, = left.plot(x, curve["mi"].to_numpy(), marker="o", ms=3, label=f"{row['layers']} layers")
            left.fill_between(x, curve["low"].to_numpy(), curve["high"].to_numpy(), color=line.get_color(), alpha=0.15)
            peak = curve.filter(pl.col("layer") == row["inner_peak_layer"])
            left.scatter(peak["relative_depth"].to_numpy(), peak["mi"].to_numpy(), marker="^", s=60, color=line.get_color(), zorder=3)
        left.set_xlabel("relative depth (layer / L; 0 = embeddings)")
        left.set_ylabel("I(Z;Y), nats (ID, last checkpoint)")
        left.set_title(f"{task}: a curve per base-model depth (triangle: inner peak)", fontsize=9)
        left.legend(fontsize=7)
        depths = rows["layers"].to_numpy()
        drop = rows["drop"].to_numpy()
        errors = [drop - rows["drop_low"].to_numpy(), rows["drop_high"].to_numpy() - drop]
        right.errorbar(range(len(depths)), drop, yerr=errors, fmt="o", capsize=4)
        right.axhline(0, color="grey", lw=0.8)
        right.set_xticks(range(len(depths)), [str(d) for d in depths])
        right.set_xlabel("base-model depth (layers)")
        right.set_ylabel("inner peak minus last layer, nats")
        right.set_title("> 0: a ridge; < 0: none (95% CI)", fontsize=9)
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--summary", required=True, help="depth.csv of infoflow.report.depth_tables")
    parser.add_argument("--curves", required=True, help="depth_curves.csv of infoflow.report.depth_tables")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--figure", required=True)
    args = parser.parse_args()
    cli.setup()
    depth_figure(pl.read_csv(args.summary), pl.read_csv(args.curves), args.figure, args.dpi)


if __name__ == "__main__":
    cli.run(main)
