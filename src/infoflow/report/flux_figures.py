"""Information flux figures: the first responses coloured by flux tercile, and bars of flux per
class and method with 95% CIs (reads infoflow.infosteer.flux files and infoflow.report.flux_tables' CSV)."""

import argparse

import numpy as np
import polars as pl

from infoflow import cli
from infoflow.report.figures import plt, save  # figures selects the file-only backend
from infoflow.report.flux_tables import COLOURS, examples, level, method_order, read_tokens, response, terciles
from infoflow.world.token_classes import CLASSES


def examples_figure(tokens, methods, prompts, bounds, path, dpi):
    """The HTML page's first examples as a PNG: one line of coloured tokens per method and prompt."""
    first, chosen = examples(tokens, prompts)
    lines = [(f"{p} / {m}", response(first, p, m)) for p in chosen for m in methods]
    fig, ax = plt.subplots(figsize=(12, 0.32 * len(lines) + 0.6))
    ax.axis("off")
    char = 0.0066  # axis width per character at fontsize 7 on a 12-inch figure (monospace)
    for row, (label, tokens) in enumerate(lines):
        y = 1 - (row + 0.5) / len(lines)
        ax.text(0, y, label, fontsize=7, family="monospace", va="center")
        x = 0.28
        for text, flux in zip(tokens["text"], tokens["flux"]):
            ax.text(x, y, text, fontsize=7, family="monospace", va="center",
                    bbox={"facecolor": COLOURS[level(flux, bounds)], "edgecolor": "none", "pad": 1})
            x += char * (len(text) + 1.5)
            if x > 0.98:
                break  # the PNG shows the start of long responses; the HTML page has them whole
    ax.set_title("information flux per response token (low / medium / high tercile)", fontsize=9)
    save(fig, path, dpi)


def classes_figure(classes, path, dpi):
    methods = list(dict.fromkeys(classes["method"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(methods) * len(CLASSES) / 3), 3.6))
    width = 0.8 / len(methods)
    order = pl.DataFrame({"token_class": list(CLASSES)})
    for i, method in enumerate(methods):
        part = order.join(classes.filter(pl.col("method") == method), on="token_class", how="left", maintain_order="left")
        flux, low, high = (part[c].fill_null(np.nan).to_numpy() for c in ("flux", "ci95_low", "ci95_high"))
        x = np.arange(len(CLASSES)) + (i - (len(methods) - 1) / 2) * width
        ax.bar(x, flux, width, yerr=np.nan_to_num(np.abs(np.vstack([flux - low, high - flux]))), capsize=2, label=method)
    ax.set_xticks(np.arange(len(CLASSES)), CLASSES)
    ax.set_ylabel("flux: mean key entropy (nats)")
    lows = classes["ci95_low"].drop_nulls().drop_nans()
    ax.set_ylim(bottom=max(0, lows.min() - 0.05) if lows.len() else 0)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", nargs="+", required=True, help="flux Parquet files (infoflow.infosteer.flux)")
    parser.add_argument("--classes", required=True, help="CSV of flux per class (infoflow.report.flux_tables)")
    parser.add_argument("--render-prompts", type=int, required=True, help="prompts shown in the example figure")
    parser.add_argument("--dpi", type=int, required=True)
    for flag in ("--examples-figure", "--classes-figure"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    tokens = read_tokens(args.tokens)
    examples_figure(tokens, method_order(tokens), args.render_prompts, terciles(tokens), args.examples_figure, args.dpi)
    numbers = {c: pl.Float64 for c in ("flux", "ci95_low", "ci95_high")}
    classes_figure(pl.read_csv(args.classes, schema_overrides={"method": pl.String, "token_class": pl.String, **numbers}),
                   args.classes_figure, args.dpi)


if __name__ == "__main__":
    cli.run(main)
