"""Information flux by token class and method: tables with bootstrap CIs, a paired comparison with
SFT, per-layer profiles and an HTML rendering of the responses (reads infoflow.infosteer.flux files;
infoflow.report.flux_figures draws them).

Uncertainty: a two-level bootstrap that resamples run seeds, then prompts, both with replacement;
a class's flux is the token-weighted mean over the drawn (seed, prompt) units. Steered - SFT
differences use the same draws for both methods (paired: the same prompts, and the run of the same
training seed), giving a 95% CI and a two-sided bootstrap p-value.
Rendering: every response token is coloured by its flux tercile (low / medium / high), the
terciles taken over all response tokens of all methods.
"""

import argparse
import html

import numpy as np
import polars as pl

from infoflow import cli
from infoflow.io import DataError, write_csv, write_text
from infoflow.report.markdown import missing, table
from infoflow.report.stats import add_bootstrap_arguments, group_mean, percentile_ci, two_level_bootstrap
from infoflow.world.token_classes import CLASSES

LEVELS = ("low", "medium", "high")
COLOURS = {"low": "#c6dbef", "medium": "#fdd49e", "high": "#ef6548"}
TOKEN_COLUMNS = ["method", "seed", "prompt_id", "position", "text", "token_class", "flux"]


def read_tokens(paths, entropy=False):
    """The response tokens of all flux files (TOKEN_COLUMNS), and with `entropy` their per-layer
    key entropies [tokens, layers] as well."""
    frames = []
    for path in paths:
        try:
            frames.append(pl.scan_parquet(path).select(TOKEN_COLUMNS + ["entropy"] * entropy).collect())
        except (OSError, pl.exceptions.PolarsError) as e:
            raise DataError(f"{path}: not a readable flux Parquet file ({e})") from None
    tokens = pl.concat(frames)
    if not entropy:
        return tokens
    return tokens.drop("entropy"), tokens["entropy"].to_numpy()


def method_order(tokens):
    present = set(tokens["method"])
    return (["sft"] if "sft" in present else []) + sorted(present - {"sft"})  # SFT first: the baseline


def positions(values, labels):
    at = {label: i for i, label in enumerate(labels)}
    return np.array([at[v] for v in values.to_list()], dtype=int)


def unit_sums(tokens):
    """Flux sums and token counts as dense arrays [method, seed, prompt, class], and the methods."""
    methods = method_order(tokens)
    seeds, prompts = sorted(tokens["seed"].unique().to_list()), sorted(tokens["prompt_id"].unique().to_list())
    shape = (len(methods), len(seeds), len(prompts), len(CLASSES))
    sums, counts = np.zeros(shape), np.zeros(shape)
    index = (positions(tokens["method"], methods), positions(tokens["seed"], seeds),
             positions(tokens["prompt_id"], prompts), positions(tokens["token_class"], CLASSES))
    np.add.at(sums, index, tokens["flux"].cast(pl.Float64).to_numpy())
    np.add.at(counts, index, 1)
    return sums, counts, methods


def class_table(means, counts, methods):
    low, high = percentile_ci(means[1:])
    rows = [{"method": m, "token_class": c, "tokens": int(counts[i, ..., j].sum()), "flux": float(means[0, i, j]),
             "ci95_low": float(low[i, j]), "ci95_high": float(high[i, j])}
            for i, m in enumerate(methods) for j, c in enumerate(CLASSES)]
    return pl.DataFrame(rows, schema={"method": pl.String, "token_class": pl.String, "tokens": pl.Int64, "flux": pl.Float64,
                                      "ci95_low": pl.Float64, "ci95_high": pl.Float64})


COMPARISON_SCHEMA = {"method": pl.String, "token_class": pl.String, "diff_vs_sft": pl.Float64, "ci95_low": pl.Float64,
                     "ci95_high": pl.Float64, "p_value": pl.Float64}


def comparison_table(means, methods):
    """Each steered method minus SFT per class: difference, paired bootstrap CI and p-value."""
    if "sft" not in methods:
        return pl.DataFrame(schema=COMPARISON_SCHEMA)
    diff = means - means[:, [methods.index("sft")]]
    low, high = percentile_ci(diff[1:])
    draws = diff[1:]
    p = np.minimum(1.0, 2 * np.minimum((draws <= 0).mean(axis=0), (draws >= 0).mean(axis=0)))
    rows = [{"method": m, "token_class": c, "diff_vs_sft": float(diff[0, i, j]), "ci95_low": float(low[i, j]),
             "ci95_high": float(high[i, j]), "p_value": float(p[i, j])}
            for i, m in enumerate(methods) if m != "sft" for j, c in enumerate(CLASSES)]
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA)


def layer_profile(tokens, entropies):
    """Mean key entropy per method, class and layer."""
    layers = entropies.shape[1]
    long = pl.DataFrame({"method": np.repeat(tokens["method"].to_numpy(), layers),
                         "token_class": np.repeat(tokens["token_class"].to_numpy(), layers),
                         "layer": np.tile(np.arange(layers), tokens.height), "entropy": entropies.reshape(-1)})
    keys = ["method", "token_class", "layer"]
    return group_mean(long, keys, ["entropy"])


def terciles(tokens):
    return np.quantile(tokens["flux"].to_numpy(), [1 / 3, 2 / 3])


def level(flux, bounds):
    return LEVELS[int(np.searchsorted(bounds, flux, side="right"))]


def examples(tokens, prompts):
    """The tokens of the first seed and its first `prompts` prompt ids (sorted)."""
    first = tokens.filter(pl.col("seed") == tokens["seed"].min())
    return first, sorted(first["prompt_id"].unique().to_list())[:prompts]


def response(first, prompt_id, method):
    """One response's tokens, in order."""
    return first.filter((pl.col("prompt_id") == prompt_id) & (pl.col("method") == method)).sort("position")


def render_html(tokens, methods, prompts, prompt_texts, bounds):
    first, chosen = examples(tokens, prompts)
    style = "".join(f".{name} {{background: {colour};}}" for name, colour in COLOURS.items())
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Information flux</title><style>"
             f"body {{font-family: sans-serif; max-width: 60em;}} .prompt {{color: #666;}} span.tok {{padding: 0 2px;}} {style}"
             f"</style></head><body><h1>Information flux per response token</h1>"
             f"<p>Colour: flux tercile over all response tokens (low &lt; {bounds[0]:.3f} &lt;= medium &lt; {bounds[1]:.3f} &lt;= high nats); "
             f"seed {first['seed'].min()}; hover a token for its flux.</p>"]
    for prompt_id in chosen:
        parts.append(f"<h2>{html.escape(prompt_id)}</h2><p class='prompt'>{html.escape(prompt_texts.get(prompt_id, ''))}</p>")
        for method in methods:
            tokens = response(first, prompt_id, method)
            spans = "".join(f"<span class='tok {level(f, bounds)}' title='{c}, flux {f:.3f}'>{html.escape(t)}</span> "
                            for t, f, c in zip(tokens["text"], tokens["flux"], tokens["token_class"]))
            parts.append(f"<div class='response' data-method='{html.escape(method)}' data-prompt='{html.escape(prompt_id)}'>"
                         f"<b>{html.escape(method)}</b>: {spans}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def by_class(frame, cell):
    """method x class table of `cell(row)` (methods sorted, classes in CLASSES order; empty where absent)."""
    cells = frame.with_columns(pl.Series("cell", [cell(row) for row in frame.iter_rows(named=True)], dtype=pl.String))
    wide = cells.pivot(on="token_class", index="method", values="cell", aggregate_function="first").sort("method")
    return wide.select("method", *(pl.col(c) if c in wide.columns else pl.lit(None, pl.String).alias(c) for c in CLASSES))


def report_markdown(classes, comparison):
    def interval(row):
        return "" if missing(row["flux"]) else f"{row['flux']:.3f} [{row['ci95_low']:.3f}, {row['ci95_high']:.3f}]"

    def difference(row):
        d, lo, hi, p = row["diff_vs_sft"], row["ci95_low"], row["ci95_high"], row["p_value"]
        return "" if missing(d) else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}] p={p:.3f}"

    parts = [table(by_class(classes, interval), "Information flux per token class (mean key entropy, nats; 95% CI over seeds and prompts)"),
             table(by_class(classes, lambda row: str(row["tokens"])), "Response tokens per class")]
    if comparison.height:
        parts.append(table(by_class(comparison, difference), "Steered minus SFT flux per class (paired bootstrap 95% CI, two-sided p)"))
    return "\n".join(parts)


def read_prompts(path):
    """{prompt id: prompt text} of the prompt file (JSON lines)."""
    prompts = pl.scan_ndjson(path, infer_schema_length=None).select("id", "prompt").collect()
    return dict(prompts.iter_rows())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", nargs="+", required=True, help="flux Parquet files (infoflow.infosteer.flux)")
    parser.add_argument("--prompts", required=True, help="the prompt file, for the prompts' text in the HTML page")
    add_bootstrap_arguments(parser)
    parser.add_argument("--render-prompts", type=int, required=True, help="prompts rendered in the HTML page")
    for flag in ("--classes", "--comparison", "--layers", "--markdown", "--html"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    tokens, entropies = read_tokens(args.tokens, entropy=True)
    sums, counts, methods = unit_sums(tokens)
    means = two_level_bootstrap(sums, counts, args.bootstrap_samples, args.seed)
    classes, comparison = class_table(means, counts, methods), comparison_table(means, methods)
    write_csv(args.classes, classes)
    write_csv(args.comparison, comparison)
    write_csv(args.layers, layer_profile(tokens, entropies))
    write_text(args.markdown, report_markdown(classes, comparison))
    write_text(args.html, render_html(tokens, methods, args.render_prompts, read_prompts(args.prompts), terciles(tokens)))


if __name__ == "__main__":
    cli.run(main)
