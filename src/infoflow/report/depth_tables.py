"""InfoRidge's depth threshold (capacity analysis): the SFT runs of one task from base models of
several depths, each one's I(Z;Y) curve over its raw layers at the last checkpoint on the ID sample,
its ridge layer, and the drop from its inner peak to its last layer.

The inner peak is the highest mean I(Z;Y) over the layers strictly inside (1..L-1, neither the
embeddings nor the last block), so the drop (inner peak minus last layer) is positive where a ridge
rises above the last layer and negative where the curve climbs to the end: a model with a ridge and
one without are told apart by the sign of its CI. Uncertainty is the two-level bootstrap of the
claims check (run seeds, then sampling seeds; infoflow.report.stats), with the peak found again on
every draw.
"""

import argparse

import polars as pl

from infoflow import cli
from infoflow.io import write_csv, write_text
from infoflow.report.claims.inforidge import EXIT_SCHEMA, MI_SCHEMA, information_grid, raw_rows
from infoflow.report.claims.preconditions import last_layer_exit
from infoflow.report.markdown import table
from infoflow.report.ridge_tables import read_all
from infoflow.report.stats import add_bootstrap_arguments, bootstrap_estimate, percentile_ci, two_level_means


def depth_draws(mi, task, method, samples, seed):
    """(draws [samples + 1, raw layers] of the mean I(Z;Y) curve, row 0 on the data; the raw layers)."""
    curves, _, keys = information_grid(mi, task, method)
    index, layers = raw_rows(keys)
    return two_level_means(curves[None], samples, seed)[:, 0, index], layers


def inner_peak_drop(draws):
    """Per draw: the inner peak's layer index (1..L-1) and its I(Z;Y) minus the last layer's."""
    inner = draws[:, 1:-1]
    return inner.argmax(axis=1) + 1, inner.max(axis=1) - draws[:, -1]


def depths_of(mi, task, methods, samples, seed):
    """(method, draws, raw layers, inner peaks, drops) of each of `methods` with curves on `task`."""
    for method in methods:
        if not mi.filter((pl.col("task") == task) & (pl.col("method") == method)).is_empty():
            draws, layers = depth_draws(mi, task, method, samples, seed)
            yield method, draws, layers, *inner_peak_drop(draws)


def depth_rows(mi, early_exit, task, methods, samples, seed):
    """One row per depth (ascending) of `task`: its method, runs, ridge layer, inner peak and drop with
    95% CIs, and the last-layer ID early-exit accuracy; and one row per depth and layer of the curve with its CI."""
    summary, curves = [], []
    for method, draws, layers, peaks, drops in depths_of(mi, task, methods, samples, seed):
        depth = int(layers.max())
        drop, low, high = bootstrap_estimate(drops)
        runs = mi.filter((pl.col("task") == task) & (pl.col("method") == method))["seed"].n_unique()
        summary.append({"task": task, "method": method, "layers": depth, "runs": runs,
                        "ridge_layer": int(layers[draws[0].argmax()]), "inner_peak_layer": int(layers[peaks[0]]),
                        "drop": drop, "drop_low": low, "drop_high": high,
                        "last_layer_exit_id": last_layer_exit(early_exit, task, method)})
        bands = percentile_ci(draws[1:])
        curves += [{"task": task, "method": method, "layers": depth, "layer": int(layer), "relative_depth": layer / depth,
                    "mi": draws[0, i], "low": bands[0, i], "high": bands[1, i]} for i, layer in enumerate(layers)]
    return pl.DataFrame(summary).sort("task", "layers"), pl.DataFrame(curves).sort("task", "layers", "layer")


def depth_markdown(summary):
    shown = summary.select(
        "task", "layers", "method", "runs", "ridge_layer", "inner_peak_layer",
        pl.format("{} [{}, {}]", *(pl.col(c).round(4) for c in ("drop", "drop_low", "drop_high"))).alias("drop to last layer, nats (95% CI)"),
        (100 * pl.col("last_layer_exit_id")).round(1).alias("last-layer ID exit, %"))
    return table(shown, "InfoRidge depth threshold: the ridge per base-model depth (SFT, last checkpoint, ID sample)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mi", nargs="+", required=True, help="ridge mi.csv files of the depth analysis's runs")
    parser.add_argument("--early-exit", nargs="+", required=True, help="their early_exit.csv files")
    parser.add_argument("--task", required=True, help="the depth analysis's task (inforidge.depths.task)")
    parser.add_argument("--methods", nargs="+", required=True, help="the depth analysis's methods (sft_depth<n>, sft)")
    add_bootstrap_arguments(parser)
    parser.add_argument("--summary", required=True, help="CSV: one row per depth")
    parser.add_argument("--curves", required=True, help="CSV: the I(Z;Y) curve of each depth with its CI")
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    cli.setup()
    mi, early_exit = read_all(args.mi, MI_SCHEMA), read_all(args.early_exit, EXIT_SCHEMA)
    summary, curves = depth_rows(mi, early_exit, args.task, args.methods, args.bootstrap_samples, args.seed)
    write_csv(args.summary, summary)
    write_csv(args.curves, curves)
    write_text(args.markdown, depth_markdown(summary))


if __name__ == "__main__":
    cli.run(main)
