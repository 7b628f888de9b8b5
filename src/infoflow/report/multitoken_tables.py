"""Multi-token decoding information over steps and layers (reads the CSVs of
infoflow.inforidge.multitoken, one per base model; infoflow.report.multitoken_figures draws them).

  multitoken.csv  per task, sets reading, step, layer row: I(Z; Y) under the sequence kernel, mean
                  over sampling seeds with its 95% percentile bootstrap CI over them (the claims
                  check resamples the same way), the number of sampling seeds and of prompts per
                  estimate (mean over seeds);
  multitoken.md   for a few steps (SHOWN_STEPS), the layer profile with its CI.
"""

import argparse

import numpy as np
import polars as pl

from infoflow import cli
from infoflow.io import DataError, write_csv, write_text
from infoflow.report.markdown import table
from infoflow.report.stats import add_bootstrap_arguments, group_mean, percentile_ci, two_level_means

SCHEMA = {"task": pl.String, "sets": pl.String, "step": pl.Int64, "layer": pl.Int64, "final_norm": pl.Boolean, "sample_seed": pl.Int64,
          "examples": pl.Int64, "mi": pl.Float64}
CELLS = ["step", "final_norm", "layer"]  # one estimate per sampling seed in each
SHOWN_STEPS = 6  # steps in the markdown table and the profile figure: the first, the last and evenly between


def read_information(paths):
    """The CSV files of infoflow.inforidge.multitoken as one table (empty, of SCHEMA, without files)."""
    if not paths:
        return pl.DataFrame(schema=SCHEMA)
    return pl.concat([pl.read_csv(p, schema_overrides=SCHEMA) for p in paths], how="vertical_relaxed")


def readings(frame):
    """[((task, sets), rows)] of the table, sorted."""
    return [(key, part) for key, part in frame.sort("task", "sets").group_by(["task", "sets"], maintain_order=True)]


def seed_draws(rows, samples, seed):
    """(draws [samples + 1, cells] of the mean over sampling seeds: row 0 on the data, then one row per
    bootstrap draw of the seeds; the cells' (step, final_norm, layer) rows) of one task and reading."""
    part = rows.sort("sample_seed", *CELLS)
    cells = part.select(CELLS).unique().sort(CELLS)
    seeds = part["sample_seed"].n_unique()
    if len(part) != seeds * len(cells) or part.select("sample_seed", *CELLS).is_duplicated().any():
        raise DataError(f"multi-token information of {part['task'][0]}: not one estimate per sampling seed, step and layer row")
    grid = part["mi"].to_numpy().reshape(seeds, len(cells))
    return two_level_means(grid[None, None], samples, seed)[:, 0], cells


def shown_steps(steps):
    """SHOWN_STEPS of the sorted `steps`: the first, the last and evenly spaced between."""
    return sorted({steps[i] for i in np.linspace(0, len(steps) - 1, min(SHOWN_STEPS, len(steps))).round().astype(int)})


def summary(frame, samples, seed):
    rows = []
    for (task, sets), part in readings(frame):
        draws, cells = seed_draws(part, samples, seed)
        low, high = percentile_ci(draws[1:])
        counts = group_mean(part, CELLS, ["examples"]).join(part.group_by(CELLS).agg(sample_seeds=pl.len()), on=CELLS)
        rows.append(cells.with_columns(task=pl.lit(task), sets=pl.lit(sets), mi=draws[0], ci95_low=low, ci95_high=high)
                    .join(counts, on=CELLS, maintain_order="left"))
    columns = ["task", "sets", *CELLS, "mi", "ci95_low", "ci95_high", "sample_seeds", "examples"]
    return pl.concat(rows).select(columns) if rows else pl.DataFrame(schema={c: SCHEMA.get(c, pl.Float64) for c in columns})


def profiles_markdown(summary_table):
    """One table per task and reading: a row per layer row, a column per shown step, 'mean [low, high]'."""
    parts = []
    for (task, sets), part in readings(summary_table):
        steps = shown_steps(sorted(part["step"].unique()))
        layer_rows = part.select("final_norm", "layer").unique().sort("final_norm", "layer").rows()
        columns = {"layer": [f"{layer} (after final norm)" if final else str(layer) for final, layer in layer_rows]}
        for step in steps:
            at = {(r["final_norm"], r["layer"]): r for r in part.filter(pl.col("step") == step).iter_rows(named=True)}
            columns[f"step {step}"] = [f"{at[k]['mi']:.4f} [{at[k]['ci95_low']:.4f}, {at[k]['ci95_high']:.4f}]" for k in layer_rows]
        parts.append(table(pl.DataFrame(columns), f"I(Z; Y) per layer at decoding steps, {task} base model, {sets} sets (nats, 95% CI)"))
    return "\n".join(parts) or "# Multi-token information\n\nNo estimates.\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--information", nargs="+", required=True, help="CSV files of infoflow.inforidge.multitoken")
    add_bootstrap_arguments(parser)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    means = summary(read_information(args.information), args.bootstrap_samples, args.seed)
    write_csv(args.csv, means)
    write_text(args.markdown, profiles_markdown(means))


if __name__ == "__main__":
    cli.run(main)
