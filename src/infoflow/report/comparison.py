"""Steered methods against SFT: paired differences with bootstrap CIs, and the ablation table.

For a method and a split, the difference to SFT is the mean over seeds and test items of
correct(method) - correct(sft), pairing runs by seed and examples by id. Its 95% CI is a paired
bootstrap that resamples seeds and test items together (percentile interval; infoflow.report.stats).
The ablation table lays the methods out like InfoSteer's Tables 2 and 8: p, alpha, lambda and
layers beside ID, OOD and average accuracy.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import polars as pl

from infoflow.io import write_csv, write_text
from infoflow.report.markdown import missing, percent, points, table
from infoflow.report.stats import Matrix, add_bootstrap_arguments, mean_ci95, paired_bootstrap

BASELINE = "sft"
COLUMNS = ["task", "method", "kind", "p", "alpha", "lam", "layers", "settings", "split", "seeds", "accuracy_mean", "ci95_low", "ci95_high",
           "diff_vs_sft", "diff_ci95_low", "diff_ci95_high"]
PARAMETERS = ("p", "alpha", "lam")
# Entry keys that are not a method's own settings (the `settings` column: a variant's groups, beta, ...).
NOT_SETTINGS = ("kind", "tasks", "run_seeds", "layers", *PARAMETERS)


def correctness_matrix(by_seed):
    """Matrix seeds (sorted) x example ids of 0/1 from {seed: (ids, correct)}: the ids in file order
    when every seed has the same ones, else their sorted union (nan where a seed lacks an id)."""
    seeds = sorted(by_seed)
    id_lists = [list(by_seed[s][0]) for s in seeds]
    items = id_lists[0] if all(ids == id_lists[0] for ids in id_lists) else sorted(set().union(*id_lists))
    values = np.full((len(seeds), len(items)), np.nan)
    column = {item: j for j, item in enumerate(items)}
    for i, seed in enumerate(seeds):
        ids, correct = by_seed[seed]
        values[i, [column[item] for item in ids]] = correct
    return Matrix(seeds, items, values)


def read_correctness(metrics_paths):
    """{(task, method, split): Matrix seeds x example ids of 0/1}, from each metrics file's predictions CSV."""
    runs = {}
    for path in metrics_paths:
        tags = json.loads(Path(path).read_text())["tags"]
        predictions = pl.read_csv(Path(path).with_suffix(".csv"), columns=["id", "correct"])
        key = (tags["task"], tags["method"], tags["split"])
        runs.setdefault(key, {})[int(tags["seed"])] = (predictions["id"].to_list(), predictions["correct"].cast(pl.Float64).to_numpy())
    return {key: correctness_matrix(by_seed) for key, by_seed in runs.items()}


def layers_text(layers):
    return ",".join(map(str, layers)) if isinstance(layers, list) else layers


def settings_text(entry):
    """'groups=8, beta=specialisation': the entry's parameters beyond p, alpha, lambda and layers."""
    return ", ".join(f"{k}={layers_text(v)}" for k, v in entry.items() if k not in NOT_SETTINGS) or None


def comparison_table(correctness, methods, samples, seed):
    rows = []
    for (task, method, split), runs in sorted(correctness.items()):
        entry = methods[method]
        mean, low, high = mean_ci95(np.nanmean(runs.values, axis=1))
        row = dict.fromkeys(COLUMNS)
        row.update({
            "task": task, "method": method, "kind": entry["kind"], **{name: entry.get(name) for name in PARAMETERS},
            "layers": layers_text(entry.get("layers", "all")) if entry["kind"] != "sft" else None, "settings": settings_text(entry),
            "split": split, "seeds": len(runs), "accuracy_mean": mean, "ci95_low": max(low, 0.0), "ci95_high": min(high, 1.0),
        })
        baseline = correctness.get((task, BASELINE, split))
        if method != BASELINE and baseline is not None:
            row["diff_vs_sft"], row["diff_ci95_low"], row["diff_ci95_high"] = paired_bootstrap(runs, baseline, samples, seed)
        rows.append(row)
    schema = {name: pl.Float64 for name in [*PARAMETERS, *COLUMNS[-6:]]} | {"seeds": pl.Int64}
    schema = {name: schema.get(name, pl.String) for name in COLUMNS}
    return pl.DataFrame(rows, schema=schema)


def comparison_markdown(comparison):
    steered = comparison.filter(pl.col("method") != BASELINE)
    shown = pl.DataFrame({
        "task": steered["task"], "method": steered["method"], "kind": steered["kind"], "split": steered["split"],
        "accuracy %": [percent(x) for x in steered["accuracy_mean"]],
        "vs SFT (points)": [points(x) for x in steered["diff_vs_sft"]],
        "paired bootstrap 95% CI": [f"[{points(l)}, {points(h)}]" for l, h in zip(steered["diff_ci95_low"], steered["diff_ci95_high"])],
        "seeds": steered["seeds"],
    }, schema_overrides={"accuracy %": pl.String, "vs SFT (points)": pl.String, "paired bootstrap 95% CI": pl.String})
    return table(shown, "Steered post-training against SFT (difference in accuracy points; CI over seeds and test items)")


def ablation_markdown(comparison):
    rows = []
    for (task, method), group in comparison.group_by(["task", "method"], maintain_order=True):
        by_split = dict(zip(group["split"], group["accuracy_mean"]))
        first = group.row(0, named=True)
        rows.append({
            "task": task, "method": method, "kind": first["kind"],
            "p": "" if missing(first["p"]) else f"{100 * first['p']:g}%",
            "alpha": "" if missing(first["alpha"]) else f"{first['alpha']:g}",
            "lambda": "" if missing(first["lam"]) else f"{first['lam']:g}", "layers": first["layers"] or "",
            "ID %": percent(by_split.get("test_id", math.nan)), "OOD %": percent(by_split.get("test_ood", math.nan)),
            "avg %": percent(float(np.mean(list(by_split.values())))), "other settings": first["settings"] or "",
        })
    return table(pl.DataFrame(rows, schema=list(rows[0]) if rows else []),
                 "Ablation: steering parameters and accuracy (mean over seeds; shape of InfoSteer Tables 2 and 8)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", nargs="+", required=True, help="evaluation metrics files; predictions CSVs lie beside them")
    parser.add_argument("--methods", required=True, help="the config's method entries, as JSON")
    add_bootstrap_arguments(parser)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--comparison", required=True, help="Markdown: differences to SFT")
    parser.add_argument("--ablation", required=True, help="Markdown: parameters and accuracy")
    args = parser.parse_args()
    comparison = comparison_table(read_correctness(args.metrics), json.loads(args.methods), args.bootstrap_samples, args.seed)
    write_csv(args.csv, comparison)
    write_text(args.comparison, comparison_markdown(comparison))
    write_text(args.ablation, ablation_markdown(comparison))


if __name__ == "__main__":
    main()
