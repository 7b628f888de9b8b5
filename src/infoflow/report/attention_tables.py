"""Attention to signal tokens per layer over runs (InfoRidge Table 2; reads the per-run CSVs of
infoflow.inforidge.attention; infoflow.report.attention_figures draws them).

  attention_layers.csv  per task, method, split, layer (1..L) and kind (signal, noise, last, rest):
                        the mean attention mass from the prediction position (over heads, run seeds
                        and examples) with its 95% CI, and beside it the ridge layer of the same
                        task's SFT runs on that split (argmax of mean I(Z;Y) over raw layers, last
                        checkpoint: infoflow.report.ridge_tables.ridge_layers);
  attention.md          the masses per layer, one table per task, method and split, the ridge marked.

Uncertainty: the two-level bootstrap of infoflow.report.stats, resampling run seeds, then examples
(the same seeded sample in every run), with the same draws for every kind and layer.
"""

import argparse

import numpy as np
import polars as pl

from infoflow import cli
from infoflow.io import write_csv, write_text
from infoflow.report.claims.inforidge import MI_SCHEMA, grid
from infoflow.report.markdown import missing, table
from infoflow.report.ridge_tables import SPLIT_LABELS, last_points, read_all, ridge_layers
from infoflow.report.stats import add_bootstrap_arguments, percentile_ci, two_level_bootstrap
from infoflow.world.modular_tokens import MASS_KINDS

MASS_SCHEMA = {"task": pl.String, "method": pl.String, "seed": pl.Int64, "split": pl.String, "example_id": pl.String,
               "layer": pl.Int64, **{kind: pl.Float64 for kind in MASS_KINDS}}
GROUPS = ["task", "method", "split"]
LAYER_SCHEMA = {**{key: pl.String for key in GROUPS}, "layer": pl.Int64, "layers": pl.Int64, "kind": pl.String, "mass": pl.Float64,
                "ci95_low": pl.Float64, "ci95_high": pl.Float64, "runs": pl.Int64, "examples": pl.Int64, "sft_ridge_layer": pl.Int64}


def mass_draws(masses, samples, seed):
    """(mean masses [samples + 1, kinds, layers] on the data, then on each two-level bootstrap draw over
    run seeds and examples; the run seeds; the layers) of one task, method and split's rows."""
    grids = [grid(masses, kind, "example_id", "layer") for kind in MASS_KINDS]
    values = np.stack([g for g, _, _ in grids])
    present = ~np.isnan(values)  # an example a run lacks weighs nothing
    draws = two_level_bootstrap(np.where(present, values, 0.0), present.astype(float), samples, seed)
    _, seeds, layers = grids[0]
    return draws, seeds, np.array(layers)


def sft_ridge(mi):
    """{(task, split): the ridge layer of the SFT runs' mean curve at their last checkpoint}."""
    if mi.is_empty():
        return {}
    ridge = last_points(ridge_layers(mi).filter((pl.col("seed") == "mean") & (pl.col("method") == "sft")))
    return {(task, split): layer for task, split, layer in ridge.select("task", "split", "ridge_layer").iter_rows()}


def layer_table(masses, mi, samples, seed):
    """One row per task, method, split, layer and kind (module docstring)."""
    ridge, rows = sft_ridge(mi), []
    for (task, method, split), part in masses.sort(GROUPS).group_by(GROUPS, maintain_order=True):
        draws, seeds, layers = mass_draws(part, samples, seed)
        low, high = percentile_ci(draws[1:])
        for k, kind in enumerate(MASS_KINDS):
            for j, layer in enumerate(layers):
                rows.append({"task": task, "method": method, "split": split, "layer": int(layer), "layers": int(layers.max()), "kind": kind,
                             "mass": float(draws[0, k, j]), "ci95_low": float(low[k, j]), "ci95_high": float(high[k, j]),
                             "runs": len(seeds), "examples": part["example_id"].n_unique(), "sft_ridge_layer": ridge.get((task, split))})
    return pl.DataFrame(rows, schema=LAYER_SCHEMA)


def interval(row):
    return f"{row['mass']:.3f} [{row['ci95_low']:.3f}, {row['ci95_high']:.3f}]"


def report_markdown(layers):
    parts = []
    for (task, method, split), part in layers.group_by(GROUPS, maintain_order=True):
        cells = part.with_columns(pl.Series("cell", [interval(row) for row in part.iter_rows(named=True)], dtype=pl.String))
        wide = cells.pivot(on="kind", index="layer", values="cell", aggregate_function="first").sort("layer")
        ridge = part["sft_ridge_layer"][0]
        marks = ["SFT ridge" if not missing(ridge) and layer == ridge else "" for layer in wide["layer"]]
        wide = wide.select("layer", *MASS_KINDS).with_columns(pl.Series("ridge", marks, dtype=pl.String))
        runs, examples = part["runs"][0], part["examples"][0]
        parts.append(table(wide, f"Attention mass from the prediction position per layer, {task}, {method}, {SPLIT_LABELS.get(split, split)} "
                                 f"(mean over heads, {runs} runs x {examples} examples, 95% CI; paper Table 2)"))
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--masses", nargs="+", required=True, help="per-run CSVs of infoflow.inforidge.attention")
    parser.add_argument("--mi", nargs="*", default=[], help="the same runs' ridge mi.csv files (none: no ridge layer shown)")
    add_bootstrap_arguments(parser)
    parser.add_argument("--layers", required=True, help="attention_layers.csv")
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    layers = layer_table(read_all(args.masses, MASS_SCHEMA), read_all(args.mi, MI_SCHEMA), args.bootstrap_samples, args.seed)
    write_csv(args.layers, layers)
    write_text(args.markdown, report_markdown(layers))


if __name__ == "__main__":
    cli.run(main)
