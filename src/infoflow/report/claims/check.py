"""The papers' claims, one row each: the paper's figure, this run's measurement with a 95% CI, its
minimal detectable effect, its preconditions measured on the run, and a verdict by a rule stated in
the row (results/claims.md for people, claims.csv for machines), and each judged part of a claim
with its estimate, CI, MDE and verdict as numbers (claims_parts.csv, which the sweep's effect map reads).

Each claim is judged by the rules of infoflow.report.claims.verdicts, then by its preconditions
(infoflow.report.claims.preconditions).

Uncertainty comes from infoflow.report.stats, as in the tables: accuracy differences are the
paired bootstrap (seeds and test items); key shares the Student-t interval over seeds; flux,
information curves, early exit and betas the two-level bootstrap (run seeds, then prompts /
sampling seeds / fit seeds), multi-token information the bootstrap over sampling seeds. Statistics of the
curves (the ridge layer, distances, drops) are computed on every bootstrap draw of the curves. The
minimal detectable effect of a part is read off the same interval (infoflow.report.stats), so it
carries the seed and item (or prompt) variance the verdict does.
"""

import argparse

import polars as pl

from infoflow.io import write_csv, write_text
from infoflow.report.attention_tables import MASS_SCHEMA
from infoflow.report.claims import attention, depth, inforidge, infosteer, multitoken, preconditions, variants
from infoflow.report.claims.verdicts import VERDICT_WORDS, VERDICTS, Claim, verdict_text
from infoflow.report.comparison import read_correctness
from infoflow.report.flux_tables import read_tokens
from infoflow.report.markdown import table
from infoflow.report.multitoken_tables import read_information
from infoflow.report.ridge_tables import read_all
from infoflow.report.stats import add_bootstrap_arguments


def all_claims(inputs, samples, seed):
    """Every claim, in order, from the loaded inputs (see main for what each one is)."""
    steering, mi = inputs["steering"], inputs["mi"]
    return [
        infosteer.claim_intervention_id(steering),
        infosteer.claim_regularization_id(steering),
        infosteer.claim_ood(steering, inputs["correctness"], inputs["base_correctness"], samples, seed),
        infosteer.claim_negative_lambda(steering),
        infosteer.claim_layer_groups(steering, inputs["correctness"], samples, seed),
        infosteer.claim_key_shift(steering, inputs["key_shares"]),
        infosteer.claim_flux(steering, inputs["flux_tokens"], samples, seed),
        inforidge.claim_ridge_depth(mi, samples, seed),
        inforidge.claim_ridge_early_exit(mi, inputs["early_exit"], samples, seed),
        inforidge.claim_raw_last_layer(mi, samples, seed),
        inforidge.claim_residual_scaling(mi, inputs["betas"], samples, seed),
        inforidge.claim_kernels(inputs["kernel_settings"], samples, seed),
        attention.claim_attention(inputs["attention"], mi, samples, seed),
        depth.claim_depth_threshold(mi, inputs["depth_task"], inputs["depth_methods"], samples, seed),
        multitoken.claim_multitoken(inputs["multitoken"], samples, seed),
        variants.claim_variants(steering, inputs["correctness"], samples, seed),
    ]


CLAIM_COLUMNS = tuple(name for name in Claim.__dataclass_fields__ if name != "parts")
# claims_parts.csv: the numbers in the part's unit (points, nats or none), nan (an empty cell) where
# a part has no estimate or MDE; paper empty where the paper gives no figure.
PART_SCHEMA = {"number": pl.String, "part": pl.String, "value": pl.Float64, "low": pl.Float64, "high": pl.Float64, "unit": pl.String,
               "verdict": pl.String, "mde": pl.Float64, "paper": pl.Float64, "claim_verdict": pl.String}


def claims_frame(claims):
    return pl.DataFrame([{name: getattr(c, name) for name in CLAIM_COLUMNS} for c in claims], schema={name: pl.String for name in CLAIM_COLUMNS})


def parts_frame(claims):
    """One row per judged part of every claim, with the claim's own verdict (after its preconditions)."""
    rows = [{"number": c.number, "part": p.label, **p.numbers(), "verdict": p.verdict, "claim_verdict": c.verdict}
            for c in claims for p in c.parts]
    return pl.DataFrame(rows, schema=PART_SCHEMA)


def claims_markdown(claims):
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    summary = ", ".join(f"{v}: {counts[v]}" for v in VERDICTS)
    shown = pl.DataFrame({"#": [c.number for c in claims], "claim": [c.claim for c in claims],
                          "paper": [f"{c.paper} ({c.source})" for c in claims], "this run (95% CI)": [c.measurement for c in claims],
                          "MDE (80% power, two-sided 5%)": [c.mde for c in claims], "preconditions": [c.preconditions for c in claims],
                          "verdict": [verdict_text(c, emphasis="**") for c in claims],
                          "rule": [c.rule for c in claims]})
    title, claims_table = table(shown, "Claims of InfoSteer and InfoRidge on this run").split("\n", 1)  # table() opens with '# title'
    thresholds = table(preconditions.preconditions_frame(), "Preconditions: thresholds and where they come from")
    return f"{title}\n\n{VERDICT_WORDS}\n{claims_table}\n{summary}\n\n{thresholds}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steering", required=True, help="results/tables/steering_vs_sft.csv")
    parser.add_argument("--metrics", nargs="*", default=[], help="evaluation metrics files of the runs (predictions CSVs beside them)")
    parser.add_argument("--base-metrics", nargs="*", default=[],
                        help="the base model's metrics files on the test splits (tags task, method, seed, split; format_rate where recorded)")
    parser.add_argument("--recall", nargs="?", help="the base model's cloze recall metrics.json (none: recall not measured)")
    parser.add_argument("--key-shares", nargs="*", default=[], help="key-shift JSON files: the base model's and every run's")
    parser.add_argument("--flux-tokens", nargs="*", default=[], help="flux Parquet files of the runs")
    parser.add_argument("--mi", nargs="*", default=[], help="per-run ridge/mi.csv files")
    parser.add_argument("--early-exit", nargs="*", default=[], help="per-run ridge/early_exit.csv files")
    parser.add_argument("--betas", nargs="*", default=[], help="per-run residual_scaling/betas.csv files")
    parser.add_argument("--kernel", required=True, help="the kernel the --mi files were estimated with")
    parser.add_argument("--sigma", type=float, required=True, help="its width")
    parser.add_argument("--kernel-mi", nargs="*", default=[],
                        help="per-run CSV files of infoflow.inforidge.kernel_check: I(Z;Y) under other kernel settings")
    parser.add_argument("--depth-task", help="the depth analysis's task (none: not run)")
    parser.add_argument("--depth-methods", nargs="*", default=[],
                        help="the SFT methods of the depth analysis (their curves are among the --mi files)")
    parser.add_argument("--multitoken", nargs="*", default=[], help="the base models' CSV files of infoflow.inforidge.multitoken")
    parser.add_argument("--attention", nargs="*", default=[], help="per-run CSVs of infoflow.inforidge.attention")
    add_bootstrap_arguments(parser)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--parts", help="claims_parts.csv: every judged part's numbers (none: not written)")
    args = parser.parse_args(argv)
    mi = read_all(args.mi, inforidge.MI_SCHEMA)
    other_kernels = read_all(args.kernel_mi, inforidge.KERNEL_SCHEMA)
    settings = [(args.kernel, args.sigma, mi)] + [
        (kernel, sigma, frame.drop("kernel", "sigma"))
        for (kernel, sigma), frame in other_kernels.sort("kernel", "sigma", maintain_order=True).group_by(["kernel", "sigma"], maintain_order=True)
    ]
    inputs = {
        "steering": infosteer.read_steering(args.steering),
        "correctness": read_correctness(args.metrics),
        "base_correctness": read_correctness(args.base_metrics),
        "key_shares": infosteer.read_key_shares(args.key_shares),
        "flux_tokens": read_tokens(args.flux_tokens) if args.flux_tokens else None,
        "mi": mi,
        "early_exit": read_all(args.early_exit, inforidge.EXIT_SCHEMA),
        "betas": read_all(args.betas, inforidge.BETA_SCHEMA),
        "kernel_settings": settings,
        "recall": preconditions.read_recall(args.recall),
        "format_rates": preconditions.read_format_rates(args.base_metrics),
        "depth_task": args.depth_task,
        "depth_methods": args.depth_methods,
        "multitoken": read_information(args.multitoken),
        "attention": read_all(args.attention, MASS_SCHEMA),
    }
    claims = preconditions.applied(all_claims(inputs, args.bootstrap_samples, args.seed), preconditions.measure(inputs))
    write_csv(args.csv, claims_frame(claims))
    if args.parts:
        write_csv(args.parts, parts_frame(claims))
    write_text(args.markdown, claims_markdown(claims))
