"""Result tables from the evaluation metrics files (CSV for machines, Markdown for people).

  accuracy: exact-match accuracy per task, method and split, mean and 95% CI over seeds (the base
            model, method 'base', is one evaluation: no interval);
  recall:   the base model's cloze recall of the facts, per attribute.
"""

import argparse
import json

import polars as pl

from infoflow.io import write_csv, write_text
from infoflow.report.markdown import percent, table
from infoflow.report.stats import mean_ci95


def frame(rows, columns=None):
    """A polars DataFrame of dict rows, each column's type inferred from all rows (`columns`: the
    columns of the empty frame when there are no rows)."""
    if not rows:
        return pl.DataFrame(schema={c: pl.Null for c in columns or []})
    return pl.from_dicts(rows, infer_schema_length=None)


def read_metrics(paths):
    """One row per metrics file: its tags (task, method, seed, split, ...), its numbers and its
    per-group results as JSON text (by_group)."""
    rows = []
    for path in paths:
        with open(path) as f:
            metrics = json.load(f)
        rows.append({**metrics["tags"], "n": metrics["n"], "accuracy": float(metrics["accuracy"]),
                     "by_group": json.dumps(metrics["by_group"])})
    return frame(rows)


def accuracy_table(metrics):
    rows = []
    keys = ["task", "method", "split"]
    for (task, method, split), group in metrics.sort(keys).group_by(keys, maintain_order=True):
        group = group.sort(pl.col("seed").cast(pl.Int64))
        mean, low, high = mean_ci95(group["accuracy"])
        low, high = max(low, 0.0), min(high, 1.0)  # an accuracy interval cannot leave [0, 1]; nan stays nan
        rows.append(
            {
                "task": task,
                "method": method,
                "split": split,
                "seeds": group.height,
                "accuracy_mean": mean,
                "ci95_low": low,
                "ci95_high": high,
                "per_seed": " ".join(f"{a:.4f}" for a in group["accuracy"]),
                "n_examples": int(group["n"][0]),
            }
        )
    return frame(rows)


def recall_table(metrics):
    (row,) = metrics.to_dicts()
    by_group = json.loads(row["by_group"])
    per_attribute = [{"attribute": a, "recall": float(g["accuracy"]), "n_facts": g["n"]} for a, g in sorted(by_group.items())]
    return frame(per_attribute + [{"attribute": "all", "recall": row["accuracy"], "n_facts": row["n"]}])


def accuracy_markdown(accuracy):
    shown = accuracy.select(
        "task",
        "method",
        "split",
        pl.col("accuracy_mean").map_elements(percent, return_dtype=pl.String).alias("accuracy % (mean)"),
        pl.Series("95% CI", [f"[{percent(l)}, {percent(h)}]" for l, h in zip(accuracy["ci95_low"], accuracy["ci95_high"])]),
        pl.col("seeds"),
        pl.col("n_examples").alias("test examples"),
    )
    return table(shown, "Exact-match accuracy (mean over seeds, 95% Student-t CI; base: the base model, no post-training)")


def recall_markdown(recall):
    shown = recall.select("attribute", pl.col("recall").map_elements(percent, return_dtype=pl.String).alias("cloze recall %"),
                          pl.col("n_facts").alias("facts"))
    return table(shown, "Base model: cloze recall of the facts it was pretrained on")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("accuracy", "recall"))
    parser.add_argument("--metrics", nargs="+", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    metrics = read_metrics(args.metrics)
    if args.kind == "accuracy":
        result = accuracy_table(metrics)
        text = accuracy_markdown(result)
    else:
        result = recall_table(metrics)
        text = recall_markdown(result)
    write_csv(args.csv, result)
    write_text(args.markdown, text)


if __name__ == "__main__":
    main()
