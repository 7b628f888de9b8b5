"""Result tables from the evaluation metrics files (CSV for machines, Markdown for people).

  accuracy: exact-match accuracy per task, method and split, mean and 95% CI over seeds (the base
            model, method 'base', is one evaluation: no interval);
  recall:   the base model's cloze recall of the facts, per attribute.
"""

import argparse
import json
import math

import pandas as pd

from infoflow.io import write_csv, write_text
from infoflow.stats import mean_ci95


def read_metrics(paths):
    """One row per metrics file: its tags (task, method, seed, split, ...) and its numbers."""
    rows = []
    for path in paths:
        with open(path) as f:
            metrics = json.load(f)
        rows.append({**metrics["tags"], "n": metrics["n"], "accuracy": metrics["accuracy"], "by_group": metrics["by_group"]})
    return pd.DataFrame(rows)


def accuracy_table(metrics):
    rows = []
    for (task, method, split), group in metrics.groupby(["task", "method", "split"], sort=True):
        group = group.sort_values("seed", key=lambda s: s.astype(int))
        mean, low, high = mean_ci95(group.accuracy)
        low, high = max(low, 0.0), min(high, 1.0)  # an accuracy interval cannot leave [0, 1]; nan stays nan
        rows.append(
            {
                "task": task,
                "method": method,
                "split": split,
                "seeds": len(group),
                "accuracy_mean": mean,
                "ci95_low": low,
                "ci95_high": high,
                "per_seed": " ".join(f"{a:.4f}" for a in group.accuracy),
                "n_examples": int(group.n.iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def recall_table(metrics):
    (row,) = metrics.to_dict("records")
    per_attribute = [{"attribute": a, "recall": g["accuracy"], "n_facts": g["n"]} for a, g in sorted(row["by_group"].items())]
    return pd.DataFrame(per_attribute + [{"attribute": "all", "recall": row["accuracy"], "n_facts": row["n"]}])


def percent(x):
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


def markdown(frame, title):
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    cells = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return f"# {title}\n\n{header}" + "\n".join(cells) + "\n"


def accuracy_markdown(table):
    shown = pd.DataFrame(
        {
            "task": table.task,
            "method": table.method,
            "split": table.split,
            "accuracy % (mean)": table.accuracy_mean.map(percent),
            "95% CI": [f"[{percent(l)}, {percent(h)}]" for l, h in zip(table.ci95_low, table.ci95_high)],
            "seeds": table.seeds,
            "test examples": table.n_examples,
        }
    )
    return markdown(shown, "Exact-match accuracy (mean over seeds, 95% Student-t CI; base: the base model, no post-training)")


def recall_markdown(table):
    shown = pd.DataFrame({"attribute": table.attribute, "cloze recall %": table.recall.map(percent), "facts": table.n_facts})
    return markdown(shown, "Base model: cloze recall of the facts it was pretrained on")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("accuracy", "recall"))
    parser.add_argument("--metrics", nargs="+", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    metrics = read_metrics(args.metrics)
    if args.kind == "accuracy":
        table = accuracy_table(metrics)
        text = accuracy_markdown(table)
    else:
        table = recall_table(metrics)
        text = recall_markdown(table)
    write_csv(args.csv, table)
    write_text(args.markdown, text)


if __name__ == "__main__":
    main()
