"""Steered methods against SFT: paired differences with bootstrap CIs, and the ablation table.

For a method and a split, the difference to SFT is the mean over seeds and test items of
correct(method) - correct(sft), pairing runs by seed and examples by id. Its 95% CI is a paired
bootstrap that resamples seeds and test items together (percentile interval).
The ablation table lays the methods out like InfoSteer's Tables 2 and 8: p, alpha, lambda and
layers beside ID, OOD and average accuracy.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from infoflow.io import write_csv, write_text
from infoflow.stats import mean_ci95
from infoflow.tables import markdown, percent

BASELINE = "sft"


def read_correctness(metrics_paths):
    """{(task, method, split): DataFrame seeds x example ids of 0/1}, from each metrics file's predictions CSV."""
    frames = {}
    for path in metrics_paths:
        tags = json.loads(Path(path).read_text())["tags"]
        predictions = pd.read_csv(Path(path).with_suffix(".csv"))
        key = (tags["task"], tags["method"], tags["split"])
        frames.setdefault(key, {})[int(tags["seed"])] = predictions.set_index("id").correct.astype(float)
    return {key: pd.DataFrame(by_seed).T.sort_index() for key, by_seed in frames.items()}


def paired_bootstrap(method, baseline, samples, seed):
    """(difference, low, high) of mean(method - baseline) over shared seeds and items, 95% percentile CI."""
    seeds = method.index.intersection(baseline.index)
    items = method.columns.intersection(baseline.columns)
    diff = (method.loc[seeds, items] - baseline.loc[seeds, items]).to_numpy()
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, diff.shape[0], size=(samples, diff.shape[0]))
    item_draws = rng.integers(0, diff.shape[1], size=(samples, diff.shape[1]))
    means = diff[seed_draws[:, :, None], item_draws[:, None, :]].mean(axis=(1, 2))
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def layers_text(layers):
    return ",".join(map(str, layers)) if isinstance(layers, list) else layers


def comparison_table(correctness, methods, samples, seed):
    rows = []
    for (task, method, split), table in sorted(correctness.items()):
        entry = methods[method]
        mean, low, high = mean_ci95(table.mean(axis=1))
        row = {
            "task": task, "method": method, "kind": entry["kind"], "p": entry.get("p"), "alpha": entry.get("alpha"),
            "lam": entry.get("lam"), "layers": layers_text(entry.get("layers", "all")) if entry["kind"] != "sft" else None,
            "split": split, "seeds": len(table), "accuracy_mean": mean, "ci95_low": max(low, 0.0), "ci95_high": min(high, 1.0),
        }
        baseline = correctness.get((task, BASELINE, split))
        if method != BASELINE and baseline is not None:
            row["diff_vs_sft"], row["diff_ci95_low"], row["diff_ci95_high"] = paired_bootstrap(table, baseline, samples, seed)
        rows.append(row)
    return pd.DataFrame(rows)


def points(x):
    return "" if pd.isna(x) else f"{100 * x:+.1f}"


def comparison_markdown(table):
    steered = table[table.method != BASELINE]
    shown = pd.DataFrame({
        "task": steered.task, "method": steered.method, "split": steered.split,
        "accuracy %": steered.accuracy_mean.map(percent),
        "vs SFT (points)": steered.diff_vs_sft.map(points),
        "paired bootstrap 95% CI": [f"[{points(l)}, {points(h)}]" for l, h in zip(steered.diff_ci95_low, steered.diff_ci95_high)],
        "seeds": steered.seeds,
    })
    return markdown(shown, "Steered post-training against SFT (difference in accuracy points; CI over seeds and test items)")


def ablation_markdown(table):
    rows = []
    for (task, method), group in table.groupby(["task", "method"], sort=False):
        by_split = group.set_index("split").accuracy_mean
        first = group.iloc[0]
        rows.append({
            "task": task, "method": method, "kind": first.kind,
            "p": "" if pd.isna(first.p) else f"{100 * first.p:g}%", "alpha": "" if pd.isna(first.alpha) else f"{first.alpha:g}",
            "lambda": "" if pd.isna(first.lam) else f"{first.lam:g}", "layers": first.layers or "",
            "ID %": percent(by_split.get("test_id", np.nan)), "OOD %": percent(by_split.get("test_ood", np.nan)),
            "avg %": percent(by_split.mean()),
        })
    return markdown(pd.DataFrame(rows), "Ablation: steering parameters and accuracy (mean over seeds; shape of InfoSteer Tables 2 and 8)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", nargs="+", required=True, help="evaluation metrics files; predictions CSVs lie beside them")
    parser.add_argument("--methods", required=True, help="the config's method entries, as JSON")
    parser.add_argument("--bootstrap-samples", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--comparison", required=True, help="Markdown: differences to SFT")
    parser.add_argument("--ablation", required=True, help="Markdown: parameters and accuracy")
    args = parser.parse_args()
    table = comparison_table(read_correctness(args.metrics), json.loads(args.methods), args.bootstrap_samples, args.seed)
    write_csv(args.csv, table)
    write_text(args.comparison, comparison_markdown(table))
    write_text(args.ablation, ablation_markdown(table))


if __name__ == "__main__":
    main()
