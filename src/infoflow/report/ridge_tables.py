"""InfoRidge tables over all runs (reads the per-run CSVs of infoflow.inforidge.ridge and
infoflow.inforidge.residual_scaling; infoflow.report.ridge_figures draws them).

  ridge_layers.csv  per task, method, checkpoint, split and layer: I(Z;Y), I(dZ;Y) (mean
                    and 2-sigma band over run seeds x sampling seeds), early-exit and
                    linear-probe accuracy (mean over run seeds);
  ridge.csv         the ridge layer (argmax of the mean I(Z;Y) over raw layers) per task,
                    method, checkpoint and split, for the seed mean and each run seed;
  residual_scaling.csv  beta per layer fitted on ID vs OOD (mean, sd over all fits);
  ridge.md          Table 1 of the paper for each task's SFT runs, the ridge layers, betas.
"""

import argparse
import json

import numpy as np
import polars as pl

from infoflow.io import write_csv, write_text
from infoflow.report.markdown import missing, percent, table
from infoflow.report.stats import group_mean
from infoflow.report.tables import frame

KEYS = ["task", "method", "point", "split", "layer", "final_norm"]
SPLIT_LABELS = {"test_id": "ID", "test_ood": "OOD"}
BETA_SCHEMA = {"task": pl.String, "method": pl.String, "fit_split": pl.String, "layer": pl.Int64, "beta_mean": pl.Float64,
               "beta_sd": pl.Float64, "fits": pl.Int64}


def read_all(paths, schema=None):
    """The CSV files as one table; without files an empty table of `schema` ({column: dtype}; the
    claims check reads runs that a config may not have)."""
    if not paths:
        return pl.DataFrame(schema=schema or {})
    return pl.concat([pl.read_csv(p, schema_overrides=schema) for p in paths], how="vertical_relaxed")


def mean_sd(data, by, value):
    """Per group of `by` (sorted): the mean, sample sd (ddof 1) and size of `value`."""
    spread = data.group_by(by).agg(pl.col(value).std().alias("sd"), pl.len().alias("size"))
    return group_mean(data, by, [value]).join(spread, on=by, nulls_equal=True, maintain_order="left")


def layer_table(mi, early_exit, probes):
    """One row per task, method, checkpoint, split and layer row (see module docstring)."""
    stats = mean_sd(mi, [*KEYS, "quantity"], "mi")
    quantities = ("hidden", "residual")
    parts = [stats.filter(pl.col("quantity") == q).select(*KEYS, pl.col("mi").alias(f"mi_{q}"), (2 * pl.col("sd")).alias(f"mi_{q}_band"))
             for q in quantities]
    wide = parts[0].join(parts[1], on=KEYS, how="full", coalesce=True, nulls_equal=True)
    wide = wide.select(*KEYS, *(f"mi_{q}" for q in quantities), *(f"mi_{q}_band" for q in quantities))
    steps = mi.group_by(["task", "method", "point"]).agg(pl.col("step").max())
    exits = group_mean(early_exit, KEYS, ["accuracy"]).rename({"accuracy": "early_exit"})
    probe = group_mean(probes, KEYS, ["accuracy"]).rename({"accuracy": "probe"})
    joined = wide.join(exits, on=KEYS, how="left").join(probe, on=KEYS, how="left").join(steps, on=["task", "method", "point"], how="left")
    return joined.sort(KEYS)


def ridge_layers(mi):
    """The argmax layer of I(Z;Y) over raw layers, for the mean over run seeds and for each seed."""
    hidden = mi.filter((pl.col("quantity") == "hidden") & ~pl.col("final_norm"))
    per_seed = group_mean(hidden, ["task", "method", "seed", "point", "split", "layer"], ["mi"])
    pooled = group_mean(per_seed, ["task", "method", "point", "split", "layer"], ["mi"]).with_columns(seed=pl.lit("mean"))
    curves = pl.concat([pooled, per_seed.with_columns(pl.col("seed").cast(pl.String))], how="diagonal")
    keys = ["task", "method", "seed", "point", "split"]
    rows = []
    for values, curve in curves.sort(keys).group_by(keys, maintain_order=True):
        curve = curve.sort("layer")
        peak = curve.row(curve["mi"].arg_max(), named=True)
        depth = int(curve["layer"].max())
        rows.append({**dict(zip(keys, values)), "ridge_layer": int(peak["layer"]), "layers": depth,
                     "depth_fraction": peak["layer"] / depth, "peak_mi": peak["mi"], "last_layer_mi": curve["mi"][-1]})
    return frame(rows)


def beta_table(betas):
    by = ["task", "method", "fit_split", "layer"]
    return mean_sd(betas, by, "beta").rename({"beta": "beta_mean", "sd": "beta_sd", "size": "fits"}).cast({"fits": pl.Int64})


def accuracy_change(summaries):
    """Held-out answer accuracy before and after fitting, per task, method and fit split (mean over fits)."""
    rows = []
    for path in summaries:
        with open(path) as f:
            summary = json.load(f)
        for fit in summary["fits"]:
            for split in ("id", "ood"):
                rows.append({"task": summary["tags"]["task"], "method": summary["tags"]["method"], "fit_split": fit["fit_split"],
                             "measured_on": split, "before": float(fit["accuracy_before"][split]),
                             "after": float(fit["accuracy_after"][split])})
    return group_mean(frame(rows), ["task", "method", "fit_split", "measured_on"], ["before", "after"])


def fmt(value, band=None, digits=4):
    if missing(value):
        return ""
    return f"{value:.{digits}f}" if missing(band) else f"{value:.{digits}f} ± {band:.{digits}f}"


def rounded(values, decimals):
    """`values` rounded as pandas rounds (numpy: scale, round half to even, unscale)."""
    return pl.Series(values.name, np.round(values.cast(pl.Float64).fill_null(np.nan).to_numpy(), decimals))


def share(value):
    return percent(value, empty="")


def table1(layers, task):
    """The paper's Table 1 for one task's SFT runs at the last checkpoint."""
    last = layers.filter((pl.col("task") == task) & (pl.col("method") == "sft"))
    last = last.filter(pl.col("point") == last["point"].max())
    ood = {(r["layer"], r["final_norm"]): r for r in last.filter(pl.col("split") == "test_ood").iter_rows(named=True)}
    rows = []
    for row in last.filter(pl.col("split") == "test_id").sort("layer", "final_norm").iter_rows(named=True):
        other = ood[(row["layer"], row["final_norm"])]
        rows.append({
            "layer": f"{row['layer']} (after final norm)" if row["final_norm"] else str(row["layer"]),
            "I(Z;Y) ID ± 2σ": fmt(row["mi_hidden"], row["mi_hidden_band"]),
            "I(ΔZ;Y) ID": fmt(row["mi_residual"]),
            "I(Z;Y) OOD": fmt(other["mi_hidden"]),
            "early exit all (%)": share(None if missing(row["early_exit"]) or missing(other["early_exit"])
                                        else (row["early_exit"] + other["early_exit"]) / 2),
            "early exit ID (%)": share(row["early_exit"]),
            "early exit OOD (%)": share(other["early_exit"]),
            "probe ID (%)": share(row["probe"]),
            "probe OOD (%)": share(other["probe"]),
        })
    return pl.DataFrame(rows)


def last_points(ridge):
    return ridge.filter(pl.col("point") == pl.col("point").max().over("task", "method"))


def report_markdown(layers, ridge, betas, accuracy):
    parts = []
    for task in sorted(layers["task"].unique()):
        if "sft" in set(layers.filter(pl.col("task") == task)["method"]):
            parts.append(table(table1(layers, task), f"Information per layer, {task} task, SFT, last checkpoint (paper Table 1)"))
    final = last_points(ridge.filter(pl.col("seed") == "mean"))
    per_seed = last_points(ridge.filter(pl.col("seed") != "mean"))
    seeds_text = per_seed.group_by(["task", "method", "split"], maintain_order=True).agg(
        pl.col("ridge_layer").cast(pl.String).str.join(" ").alias("per seed"))
    summary = final.join(seeds_text, on=["task", "method", "split"], how="left", maintain_order="left")
    summary = summary.with_columns(pl.col("split").replace_strict(SPLIT_LABELS, default=None), rounded(summary["depth_fraction"], 2),
                                   pl.Series("peak_mi", [fmt(x) for x in summary["peak_mi"]], dtype=pl.String),
                                   pl.Series("last_layer_mi", [fmt(x) for x in summary["last_layer_mi"]], dtype=pl.String))
    parts.append(table(summary.select("task", "method", "split", "ridge_layer", "layers", "depth_fraction", "per seed", "peak_mi",
                                      "last_layer_mi"), "Ridge layer at the last checkpoint (argmax of mean I(Z;Y) over raw layers)"))
    over_training = ridge.filter((pl.col("seed") == "mean") & (pl.col("method") == "sft") & (pl.col("split") == "test_id"))
    parts.append(table(over_training.select("task", "point", "ridge_layer", pl.Series("peak_mi", [fmt(x) for x in over_training["peak_mi"]], dtype=pl.String),
                                            pl.Series("last_layer_mi", [fmt(x) for x in over_training["last_layer_mi"]], dtype=pl.String)),
                       "Ridge layer over fine-tuning (SFT, ID; point 0 is the base model)"))
    if betas.height:
        wide = betas.pivot(on="fit_split", index=["task", "method", "layer"], values="beta_mean", aggregate_function="mean",
                           sort_columns=True).sort("task", "method", "layer")
        wide = wide.rename({"id": "beta fitted on ID", "ood": "beta fitted on OOD"}, strict=False)
        wide = wide.with_columns(rounded(wide[c], 3) for c in wide.columns[3:])
        parts.append(table(wide, "Residual scaling coefficients per block (mean over run seeds x fit seeds)"))
        parts.append(table(accuracy.with_columns(pl.Series(c, [share(x) for x in accuracy[c]], dtype=pl.String) for c in ("before", "after")),
                           "Held-out answer accuracy (%) before and after fitting the betas"))
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--mi", "--early-exit", "--probes"):
        parser.add_argument(flag, nargs="+", required=True)
    for flag in ("--betas", "--summaries"):
        parser.add_argument(flag, nargs="*", default=[])
    for flag in ("--layers", "--ridge", "--residual-scaling", "--markdown"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    mi = read_all(args.mi)
    layers = layer_table(mi, read_all(args.early_exit), read_all(args.probes))
    ridge = ridge_layers(mi)
    betas = beta_table(read_all(args.betas)) if args.betas else pl.DataFrame(schema=BETA_SCHEMA)
    accuracy = accuracy_change(args.summaries) if args.summaries else pl.DataFrame()
    write_csv(args.layers, layers)
    write_csv(args.ridge, ridge)
    write_csv(args.residual_scaling, betas)
    write_text(args.markdown, report_markdown(layers, ridge, betas, accuracy))


if __name__ == "__main__":
    main()
