"""Information flux by token class and method: tables with bootstrap CIs, a paired comparison with
SFT, per-layer profiles, an HTML rendering of the responses and figures (reads infoflow.flux files).

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
import pandas as pd
import pyarrow.parquet as pq

from infoflow import cli, parquet
from infoflow.figures import plt, save  # figures selects the file-only backend
from infoflow.token_classes import CLASSES
from infoflow.io import DataError, write_csv, write_text
from infoflow.tables import markdown

LEVELS = ("low", "medium", "high")
COLOURS = {"low": "#c6dbef", "medium": "#fdd49e", "high": "#ef6548"}


def read_tokens(paths):
    """(token frame, [tokens, layers] per-layer entropies) of all flux files."""
    frames, entropies = [], []
    for path in paths:
        try:
            table = pq.read_table(path)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line message
            raise DataError(f"{path}: not a readable flux Parquet file ({e})") from None
        frames.append(table.drop_columns(["entropy"]).to_pandas())
        entropies.append(parquet.vectors(table, "entropy"))
    return pd.concat(frames, ignore_index=True), np.concatenate(entropies)


def method_order(tokens):
    present = set(tokens.method)
    return (["sft"] if "sft" in present else []) + sorted(present - {"sft"})  # SFT first: the baseline


def unit_sums(tokens):
    """Flux sums and token counts as dense arrays [method, seed, prompt, class], and the methods."""
    methods = method_order(tokens)
    seeds, prompts = sorted(tokens.seed.unique()), sorted(tokens.prompt_id.unique())
    shape = (len(methods), len(seeds), len(prompts), len(CLASSES))
    sums, counts = np.zeros(shape), np.zeros(shape)
    index = (tokens.method.map({m: i for i, m in enumerate(methods)}).to_numpy(),
             tokens.seed.map({s: i for i, s in enumerate(seeds)}).to_numpy(),
             tokens.prompt_id.map({p: i for i, p in enumerate(prompts)}).to_numpy(),
             tokens.token_class.map({c: i for i, c in enumerate(CLASSES)}).to_numpy())
    np.add.at(sums, index, tokens.flux.to_numpy(dtype=float))
    np.add.at(counts, index, 1)
    return sums, counts, methods


def bootstrap_means(sums, counts, samples, seed):
    """[samples + 1, method, class] class means: row 0 on the data, then one per bootstrap draw."""
    rng = np.random.default_rng(seed)
    n_seeds, n_prompts = sums.shape[1], sums.shape[2]
    weights = [(np.ones(n_seeds), np.ones(n_prompts))]
    for _ in range(samples):
        weights.append((np.bincount(rng.integers(n_seeds, size=n_seeds), minlength=n_seeds),
                        np.bincount(rng.integers(n_prompts, size=n_prompts), minlength=n_prompts)))
    w_seed = np.array([w[0] for w in weights], dtype=float)
    w_prompt = np.array([w[1] for w in weights], dtype=float)
    total = np.einsum("bs,bp,mspc->bmc", w_seed, w_prompt, sums)
    count = np.einsum("bs,bp,mspc->bmc", w_seed, w_prompt, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def class_table(means, counts, methods):
    low, high = np.nanpercentile(means[1:], [2.5, 97.5], axis=0)
    rows = [{"method": m, "token_class": c, "tokens": int(counts[i, ..., j].sum()), "flux": means[0, i, j],
             "ci95_low": low[i, j], "ci95_high": high[i, j]}
            for i, m in enumerate(methods) for j, c in enumerate(CLASSES)]
    return pd.DataFrame(rows)


def comparison_table(means, methods):
    """Each steered method minus SFT per class: difference, paired bootstrap CI and p-value."""
    if "sft" not in methods:
        return pd.DataFrame(columns=["method", "token_class", "diff_vs_sft", "ci95_low", "ci95_high", "p_value"])
    diff = means - means[:, [methods.index("sft")]]
    low, high = np.nanpercentile(diff[1:], [2.5, 97.5], axis=0)
    draws = diff[1:]
    p = np.minimum(1.0, 2 * np.minimum((draws <= 0).mean(axis=0), (draws >= 0).mean(axis=0)))
    rows = [{"method": m, "token_class": c, "diff_vs_sft": diff[0, i, j], "ci95_low": low[i, j], "ci95_high": high[i, j],
             "p_value": p[i, j]}
            for i, m in enumerate(methods) if m != "sft" for j, c in enumerate(CLASSES)]
    return pd.DataFrame(rows)


def layer_profile(tokens, entropies):
    """Mean key entropy per method, class and layer."""
    layers = entropies.shape[1]
    long = pd.DataFrame({"method": np.repeat(tokens.method.to_numpy(), layers),
                         "token_class": np.repeat(tokens.token_class.to_numpy(), layers),
                         "layer": np.tile(np.arange(layers), len(tokens)), "entropy": entropies.reshape(-1)})
    return long.groupby(["method", "token_class", "layer"]).entropy.mean().reset_index()


def terciles(tokens):
    return np.quantile(tokens.flux, [1 / 3, 2 / 3])


def level(flux, bounds):
    return LEVELS[int(np.searchsorted(bounds, flux, side="right"))]


def examples(tokens, prompts):
    """The first `prompts` prompt ids (sorted) of the first seed, and the methods in table order."""
    first = tokens[tokens.seed == tokens.seed.min()]
    return first, sorted(first.prompt_id.unique())[:prompts]


def render_html(tokens, methods, prompts, prompt_texts, bounds):
    first, chosen = examples(tokens, prompts)
    style = "".join(f".{name} {{background: {colour};}}" for name, colour in COLOURS.items())
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Information flux</title><style>"
             f"body {{font-family: sans-serif; max-width: 60em;}} .prompt {{color: #666;}} span.tok {{padding: 0 2px;}} {style}"
             f"</style></head><body><h1>Information flux per response token</h1>"
             f"<p>Colour: flux tercile over all response tokens (low &lt; {bounds[0]:.3f} &lt;= medium &lt; {bounds[1]:.3f} &lt;= high nats); "
             f"seed {first.seed.min()}; hover a token for its flux.</p>"]
    for prompt_id in chosen:
        parts.append(f"<h2>{html.escape(prompt_id)}</h2><p class='prompt'>{html.escape(prompt_texts.get(prompt_id, ''))}</p>")
        for method in methods:
            response = first[(first.prompt_id == prompt_id) & (first.method == method)].sort_values("position")
            spans = "".join(f"<span class='tok {level(f, bounds)}' title='{c}, flux {f:.3f}'>{html.escape(t)}</span> "
                            for t, f, c in zip(response.text, response.flux, response.token_class))
            parts.append(f"<div class='response' data-method='{html.escape(method)}' data-prompt='{html.escape(prompt_id)}'>"
                         f"<b>{html.escape(method)}</b>: {spans}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def examples_figure(tokens, methods, prompts, bounds, path, dpi):
    """The HTML page's first examples as a PNG: one line of coloured tokens per method and prompt."""
    first, chosen = examples(tokens, prompts)
    lines = [(f"{p} / {m}", first[(first.prompt_id == p) & (first.method == m)].sort_values("position")) for p in chosen for m in methods]
    fig, ax = plt.subplots(figsize=(12, 0.32 * len(lines) + 0.6))
    ax.axis("off")
    char = 0.0066  # axis width per character at fontsize 7 on a 12-inch figure (monospace)
    for row, (label, response) in enumerate(lines):
        y = 1 - (row + 0.5) / len(lines)
        ax.text(0, y, label, fontsize=7, family="monospace", va="center")
        x = 0.28
        for text, flux in zip(response.text, response.flux):
            ax.text(x, y, text, fontsize=7, family="monospace", va="center",
                    bbox={"facecolor": COLOURS[level(flux, bounds)], "edgecolor": "none", "pad": 1})
            x += char * (len(text) + 1.5)
            if x > 0.98:
                break  # the PNG shows the start of long responses; the HTML page has them whole
    ax.set_title("information flux per response token (low / medium / high tercile)", fontsize=9)
    save(fig, path, dpi)


def classes_figure(table, path, dpi):
    methods = list(dict.fromkeys(table.method))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(methods) * len(CLASSES) / 3), 3.6))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        part = table[table.method == method].set_index("token_class").reindex(CLASSES)
        x = np.arange(len(CLASSES)) + (i - (len(methods) - 1) / 2) * width
        err = np.abs(np.vstack([part.flux - part.ci95_low, part.ci95_high - part.flux]))
        ax.bar(x, part.flux, width, yerr=np.nan_to_num(err), capsize=2, label=method)
    ax.set_xticks(np.arange(len(CLASSES)), CLASSES)
    ax.set_ylabel("flux: mean key entropy (nats)")
    ax.set_ylim(bottom=max(0, np.nanmin(table.ci95_low.to_numpy(dtype=float)) - 0.05) if table.ci95_low.notna().any() else 0)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    save(fig, path, dpi)


def report_markdown(classes, comparison):
    def fmt(row):
        return "" if pd.isna(row.flux) else f"{row.flux:.3f} [{row.ci95_low:.3f}, {row.ci95_high:.3f}]"

    wide = classes.assign(cell=classes.apply(fmt, axis=1)).pivot(index="method", columns="token_class", values="cell")
    wide = wide.reindex(columns=list(CLASSES)).reset_index()
    counts = classes.pivot(index="method", columns="token_class", values="tokens").reindex(columns=list(CLASSES)).reset_index()
    parts = [markdown(wide, "Information flux per token class (mean key entropy, nats; 95% CI over seeds and prompts)"),
             markdown(counts, "Response tokens per class")]
    if len(comparison):
        cells = comparison.assign(cell=[f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}] p={p:.3f}" if not pd.isna(d) else ""
                                        for d, lo, hi, p in zip(comparison.diff_vs_sft, comparison.ci95_low, comparison.ci95_high, comparison.p_value)])
        diff = cells.pivot(index="method", columns="token_class", values="cell").reindex(columns=list(CLASSES)).reset_index()
        parts.append(markdown(diff, "Steered minus SFT flux per class (paired bootstrap 95% CI, two-sided p)"))
    return "\n".join(parts)


def tables(args):
    tokens, entropies = read_tokens(args.tokens)
    sums, counts, methods = unit_sums(tokens)
    means = bootstrap_means(sums, counts, args.bootstrap_samples, args.seed)
    classes, comparison = class_table(means, counts, methods), comparison_table(means, methods)
    prompt_texts = dict(pd.read_json(args.prompts, lines=True)[["id", "prompt"]].itertuples(index=False))
    write_csv(args.classes, classes)
    write_csv(args.comparison, comparison)
    write_csv(args.layers, layer_profile(tokens, entropies))
    write_text(args.markdown, report_markdown(classes, comparison))
    write_text(args.html, render_html(tokens, methods, args.render_prompts, prompt_texts, terciles(tokens)))


def figures(args):
    tokens, _ = read_tokens(args.tokens)
    examples_figure(tokens, method_order(tokens), args.render_prompts, terciles(tokens), args.examples_figure, args.dpi)
    classes_figure(pd.read_csv(args.classes), args.classes_figure, args.dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    table_args, figure_args = commands.add_parser("tables"), commands.add_parser("figures")
    for sub in (table_args, figure_args):
        sub.add_argument("--tokens", nargs="+", required=True, help="flux Parquet files (infoflow.flux)")
        sub.add_argument("--render-prompts", type=int, required=True, help="prompts rendered (HTML page, example figure)")
        sub.add_argument("--classes", required=True, help="CSV of flux per class (written by tables, read by figures)")
    table_args.add_argument("--prompts", required=True, help="the prompt file, for the prompts' text in the HTML page")
    table_args.add_argument("--bootstrap-samples", type=int, required=True)
    table_args.add_argument("--seed", type=int, required=True)
    for flag in ("--comparison", "--layers", "--markdown", "--html"):
        table_args.add_argument(flag, required=True)
    figure_args.add_argument("--dpi", type=int, required=True)
    for flag in ("--examples-figure", "--classes-figure"):
        figure_args.add_argument(flag, required=True)
    args = parser.parse_args()
    tables(args) if args.command == "tables" else figures(args)


if __name__ == "__main__":
    cli.run(main)
