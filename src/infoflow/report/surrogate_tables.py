"""Memory-vector surrogates (InfoSteer Sec. 4.3): the most specialised vectors of each layer with their
top tokens, and what kind of tokens the vectors promote (reads infoflow.infosteer.surrogates' files).

  vectors     per layer, the `--top-vectors` memory vectors of highest specialisation 1 - H/log|V|,
              their top tokens and those tokens' categories;
  categories  per layer, the share of the vectors' top-K tokens that are names, cities, years,
              companies or fields of the knowledge world (its facts file), among all vectors and among
              the most specialised ones, beside the share of such tokens in the vocabulary (the base
              rate): a ratio above 1 means the vectors promote that kind of token more than chance.
Without a facts file every token is 'other'.
"""

import argparse

import polars as pl

from infoflow import cli
from infoflow.io import read_parquet, write_csv, write_text
from infoflow.report.markdown import missing, percent, table
from infoflow.world.knowledge_world import ATTRIBUTES, read_facts

CATEGORIES = ("name", *ATTRIBUTES, "other")


def token_categories(facts):
    """{token: category} of the world's words: both words of each person's name, and each attribute value."""
    found = {}
    for entity, attributes in facts.items():
        found.update(dict.fromkeys(entity.split(), "name"))
        for attribute, value in attributes.items():
            found.setdefault(value, attribute)
    return found


def read_surrogates(path):
    return pl.from_arrow(read_parquet(path, ["layer", "index", "entropy", "specialisation", "top_tokens"]))


def most_specialised(surrogates, count):
    """The `count` vectors of highest specialisation per layer, ranked from 1."""
    ranked = surrogates.sort(["layer", "specialisation", "index"], descending=[False, True, False])
    return ranked.group_by("layer", maintain_order=True).head(count).with_columns(
        rank=pl.int_range(1, pl.len() + 1).over("layer"))


def category_counts(tokens, categories):
    """'city 6, name 3, other 1': the categories of one vector's top tokens, most frequent first."""
    counts = {}
    for token in tokens:
        counts[categories.get(token, "other")] = counts.get(categories.get(token, "other"), 0) + 1
    return ", ".join(f"{c} {n}" for c, n in sorted(counts.items(), key=lambda item: (-item[1], CATEGORIES.index(item[0]))))


def vectors_table(surrogates, categories, count):
    top = most_specialised(surrogates, count)
    return top.select(
        "layer", "rank", "index", "specialisation", "entropy",
        pl.col("top_tokens").list.join(" ").alias("top_tokens"),
        pl.col("top_tokens").map_elements(lambda tokens: category_counts(tokens, categories), return_dtype=pl.String).alias("categories"),
    )


def shares(tokens, categories):
    """{category: share of `tokens` in it}."""
    found = [categories.get(token, "other") for token in tokens]
    return {c: found.count(c) / len(found) if found else float("nan") for c in CATEGORIES}


def categories_table(surrogates, categories, vocabulary, count):
    """Per layer, subset (all vectors, the `count` most specialised) and category: the share of top
    tokens, the vocabulary's base rate and their ratio."""
    base = shares(vocabulary, categories)
    subsets = {"all": surrogates, f"top {count}": most_specialised(surrogates, count)}
    rows = []
    for subset, frame in subsets.items():
        for (layer,), part in frame.group_by("layer", maintain_order=True):
            found = shares(part["top_tokens"].explode().to_list(), categories)
            rows += [{"layer": layer, "vectors": subset, "category": c, "share": found[c], "base_rate": base[c],
                      "ratio": found[c] / base[c] if base[c] else float("nan")} for c in CATEGORIES]
    return pl.DataFrame(rows, schema={"layer": pl.Int64, "vectors": pl.String, "category": pl.String, "share": pl.Float64,
                                      "base_rate": pl.Float64, "ratio": pl.Float64}).sort("vectors", "layer", maintain_order=True)


def share_cell(share, ratio):
    """'12.5 (3.10x)': a share in percent and its ratio to the base rate (none where the vocabulary has no such token)."""
    return percent(share) + ("" if missing(ratio) else f" ({ratio:.2f}x)")


def report_markdown(vectors, categories):
    shown = vectors.with_columns(pl.col("specialisation").round_sig_figs(3), pl.col("entropy").round(3))
    wide = categories.with_columns(
        cell=pl.Series([share_cell(s, r) for s, r in zip(categories["share"], categories["ratio"])], dtype=pl.String))
    wide = wide.pivot("category", index=["vectors", "layer"], values="cell", maintain_order=True)
    base = categories.unique("category", keep="first", maintain_order=True)
    rates = ", ".join(f"{c} {percent(r)}%" for c, r in zip(base["category"], base["base_rate"]))
    return (table(shown, "Most specialised memory vectors per layer (specialisation 1 - H/log|V|; top tokens of softmax(v W_decode))")
            + "\n" + table(wide, f"Top tokens by kind (% of the top tokens; x the vocabulary's base rate: {rates})"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogates", required=True, help="Parquet file of infoflow.infosteer.surrogates")
    parser.add_argument("--vocabulary", required=True, help="its vocabulary CSV (id, token)")
    parser.add_argument("--facts", help="the knowledge world's facts.csv (none: every token is 'other')")
    parser.add_argument("--top-vectors", type=int, required=True, help="most specialised vectors per layer")
    parser.add_argument("--vectors-csv", required=True)
    parser.add_argument("--categories-csv", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    cli.setup()
    surrogates = read_surrogates(args.surrogates)
    categories = token_categories(read_facts(args.facts)) if args.facts else {}
    vocabulary = pl.read_csv(args.vocabulary, schema_overrides={"token": pl.String})["token"].to_list()
    vectors = vectors_table(surrogates, categories, args.top_vectors)
    kinds = categories_table(surrogates, categories, vocabulary, args.top_vectors)
    write_csv(args.vectors_csv, vectors)
    write_csv(args.categories_csv, kinds)
    write_text(args.markdown, report_markdown(vectors, kinds))


if __name__ == "__main__":
    cli.run(main)
