"""InfoSteer's claims (1-7): ID accuracy of the steered methods against SFT, OOD accuracy against
the base model, steering by layer group, the key-distribution shift and the information flux.

Uncertainty, reused from the tables: accuracy differences are the paired bootstrap of
infoflow.report.comparison (seeds and test items); key shares the Student-t interval over seeds;
flux the two-level bootstrap of infoflow.report.flux_tables (run seeds, then prompts); all in
infoflow.report.stats. Each part's MDE, read off its CI, is held against the paper's effect where the
paper gives one (STEERING_GAINS and the constants beside it).
"""

import json
import math

import numpy as np
import polars as pl

from infoflow.report.claims.verdicts import (NOT_TESTED, Claim, Estimate, Part, ci_rule, draws_estimate, judge, judged, nats, number,
                                             parts_text, points)
from infoflow.report.comparison import BASELINE
from infoflow.report.flux_tables import unit_sums
from infoflow.report.key_shift_tables import REGIONS
from infoflow.report.stats import Matrix, mean_ci95, paired_bootstrap, two_level_bootstrap
from infoflow.world.token_classes import CLASSES

# The paper's default settings: among several runs of a kind, the claims use the closest one.
INTERVENTION_DEFAULT = {"p": 0.01, "alpha": 1.0}
REGULARIZATION_DEFAULT = {"lam": 0.01}
NEGATIVE_LAMBDA_DEFAULT = {"lam": -0.01}
LOW_FLUX_CLASSES = ("function", "punctuation", "copied")
# The paper's effects that a part's MDE is held against (fractions); where it reports several (models,
# readings), their mean. Claims 6 and 7 have none: the paper shows them as bars or colours only.
STEERING_GAINS = {"intervention": 0.0206, "regularization": 0.0140}  # minus SFT, Table 1 Avg8, mean of six models
NEGATIVE_LAMBDA_GAIN = -0.003  # 72.3 - 72.6, Table 2
OOD_GAINS = {BASELINE: -0.016, "intervention": 0.013, "regularization": 0.007}  # minus the base model, Table 4
# Table 8's average accuracy per layer group; 'all' is the mean of Table 2's all-layer rows (alpha 1 and 2:
# 73.8, 75.5), which Table 8 repeats without saying which.
LAYER_GROUP_ACCURACY = {"early": 73.8, "middle": 75.2, "late": 72.9, "early+middle": 76.3, "middle+late": 74.5, "all": 74.65}
# steering_vs_sft.csv's columns that are numbers (read as such even where a run leaves one empty)
STEERING_NUMBERS = ("p", "alpha", "lam", "seeds", "accuracy_mean", "ci95_low", "ci95_high", "diff_vs_sft", "diff_ci95_low",
                    "diff_ci95_high")


def read_steering(path):
    """results/tables/steering_vs_sft.csv (infoflow.report.comparison)."""
    schema = {"task": pl.String, "method": pl.String, "kind": pl.String, "layers": pl.String, "settings": pl.String, "split": pl.String}
    return pl.read_csv(path, schema_overrides={**schema, **{name: pl.Float64 for name in STEERING_NUMBERS}})


# --- which runs a claim reads -------------------------------------------------------------------


def choose_method(steering, kind, defaults, keep=None):
    """The steered method of `kind` nearest the paper's setting: all layers first, then the smallest
    distance of its parameters to `defaults`; None when the run has none (after `keep`, a row filter)."""
    methods = steering.filter(pl.col("kind") == kind).unique("method", keep="first", maintain_order=True)
    if keep is not None:
        methods = methods.filter(keep)
    if methods.is_empty():
        return None
    distance = pl.sum_horizontal(*((pl.col(name) - value).abs() for name, value in defaults.items()), ignore_nulls=False)
    order = methods.select(partial=(pl.col("layers") != "all").fill_null(True), distance=distance.fill_null(np.nan), method="method")
    return order.sort("partial", "distance", "method")["method"][0]


def steered_methods(steering):
    """{'intervention': name or None, 'regularization': name or None}: the runs standing for "steering"."""
    return {
        "intervention": choose_method(steering, "intervention", INTERVENTION_DEFAULT),
        "regularization": choose_method(steering, "regularization", REGULARIZATION_DEFAULT, keep=pl.col("lam") > 0),
    }


def describe(steering, method):
    """'name (p=0.01, alpha=1, layers all)' from the steering table's parameter columns."""
    row = steering.filter(pl.col("method") == method).row(0, named=True)
    params = [f"{name}={row[name]:g}" for name in ("p", "alpha", "lam") if not math.isnan(number(row[name]))]
    return f"{method} ({', '.join(params)}, layers {row['layers']})"


def tasks_of(steering, method):
    return steering.filter(pl.col("method") == method)["task"].to_list()


def steering_row(steering, task, method, split="test_id"):
    """The row of a task, method and split as {column: value}, missing numbers as nan."""
    row = steering.filter((pl.col("task") == task) & (pl.col("method") == method) & (pl.col("split") == split)).row(0, named=True)
    return {name: number(value) if name in STEERING_NUMBERS else value for name, value in row.items()}


# --- the claims -----------------------------------------------------------------------------------


def steered_vs_sft(number, claim, paper, source, steering, method, missing, op, gain):
    """A steered method's ID accuracy against SFT on every task it ran (steering_vs_sft.csv); `gain`:
    the paper's difference."""
    rule = ci_rule("the ID accuracy difference (method - SFT, paired bootstrap over seeds and test items)", op, 0)
    rule += " (on every task the method ran)"
    if method is None:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: {missing}")
    tasks = sorted(set(tasks_of(steering, method)) & set(tasks_of(steering, BASELINE)))
    if not tasks:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no SFT run on the tasks of {method}")
    parts = []
    for task in tasks:
        row = steering_row(steering, task, method)
        estimate = Estimate(row["diff_vs_sft"], row["diff_ci95_low"], row["diff_ci95_high"])
        levels = f"{100 * steering_row(steering, task, BASELINE)['accuracy_mean']:.1f}% -> {100 * row['accuracy_mean']:.1f}%"
        parts.append(judge(f"{task}, ID accuracy minus SFT's ({levels}), points", estimate, points, 0, op, gain))
    return judged(number, claim, paper, source, f"{describe(steering, method)}: " + parts_text(parts), parts, rule)


def claim_intervention_id(steering):
    return steered_vs_sft(
        "1", "InfoSteer's intervention raises ID accuracy over SFT.", "+1.7 to +2.6 points (8-task average, six models; mean +2.1)",
        "InfoSteer Table 1", steering, steered_methods(steering)["intervention"], "no method of kind intervention in this run", ">",
        STEERING_GAINS["intervention"])


def claim_regularization_id(steering):
    return steered_vs_sft(
        "2", "InfoSteer's entropy regularisation raises ID accuracy over SFT.", "+1.0 to +1.8 points (8-task average, six models; mean +1.4)",
        "InfoSteer Table 1", steering, steered_methods(steering)["regularization"],
        "no method of kind regularization with lam > 0 in this run", ">", STEERING_GAINS["regularization"])


def claim_negative_lambda(steering):
    method = choose_method(steering, "regularization", NEGATIVE_LAMBDA_DEFAULT, keep=pl.col("lam") < 0)
    return steered_vs_sft(
        "4", "Entropy minimisation (lambda < 0) does worse than SFT.", "72.3 vs SFT 72.6 average accuracy (lambda = -0.01)",
        "InfoSteer Table 2", steering, method, "no method of kind regularization with lam < 0 in this run", "<", NEGATIVE_LAMBDA_GAIN)


def base_like(base, runs):
    """The base model's correctness [1, items] repeated for every seed of `runs`: one fixed model,
    so paired_bootstrap resamples the runs' seeds and the shared items against the same answers."""
    return Matrix(runs.rows, base.columns, np.repeat(base.values[:1], len(runs), axis=0))


def claim_ood(steering, correctness, base_correctness, samples, seed):
    number, claim = "3", "SFT lowers OOD accuracy below the base model's, while steered post-training raises it."
    paper, source = "base 85.3, SFT 83.7 (-1.6), Int 86.6 (+1.3), Reg 86.0 (+0.7) OOD average", "InfoSteer Table 4"
    rule = (ci_rule("OOD accuracy minus the base model's (paired bootstrap over seeds and test items)", "<", 0)
            + " for SFT, and the same with > 0 for each steered method; every part on every task with a steered run")
    kinds = {m: kind for kind, m in steered_methods(steering).items() if m is not None}  # steered method: its kind
    base = {task: frame for (task, _, split), frame in base_correctness.items() if split == "test_ood"}
    tasks = sorted(set(steering.filter(pl.col("method").is_in(list(kinds)))["task"]) & set(base))
    if not kinds or not tasks:
        reason = "no steered method in this run" if not kinds else "the base model was not evaluated on the OOD split (--base-metrics)"
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: {reason}")
    parts = []
    for task in tasks:
        for method, op, gain in [(BASELINE, "<", OOD_GAINS[BASELINE]), *((m, ">", OOD_GAINS[kind]) for m, kind in kinds.items())]:
            runs = correctness.get((task, method, "test_ood"))
            if runs is None:
                continue
            estimate = Estimate(*paired_bootstrap(runs, base_like(base[task], runs), samples, seed))
            parts.append(judge(f"{task}, {method} - base, OOD points", estimate, points, 0, op, gain))
    return judged(number, claim, paper, source, parts_text(parts), parts, rule)


def layer_group_runs(steering):
    """(task, {layers: method}) of the first intervention setting (p, alpha) run on all, early+middle
    and late layers alike; None if there is none."""
    runs = steering.filter(pl.col("kind") == "intervention").unique(["task", "method"], keep="first", maintain_order=True)
    runs = runs.drop_nulls(["p", "alpha"]).sort("task", "p", "alpha", maintain_order=True)
    for (task, _, _), same in runs.group_by(["task", "p", "alpha"], maintain_order=True):
        groups = dict(zip(same["layers"], same["method"]))
        if {"all", "early+middle", "late"} <= set(groups):
            return task, groups
    return None


def layer_group_gain(group, other):
    """Table 8's accuracy of one layer group minus another's (a fraction); None where it lacks either."""
    if group not in LAYER_GROUP_ACCURACY or other not in LAYER_GROUP_ACCURACY:
        return None
    return (LAYER_GROUP_ACCURACY[group] - LAYER_GROUP_ACCURACY[other]) / 100


def claim_layer_groups(steering, correctness, samples, seed):
    number, claim = "5", "Steering early+middle layers beats steering all layers, and steering late layers only is worst."
    paper, source = "early+middle 76.3 > middle 75.2 > early 73.8 > late 72.9 (all layers: 73.8 / 75.5)", "InfoSteer Table 8"
    rule = ("reproduced if the 95% CI of the ID accuracy difference early+middle - all lies above 0 and that of late - X "
            "lies below 0 for every other layer group X run (paired bootstrap over seeds and test items); not reproduced if "
            "any of these CIs lies entirely on the wrong side of 0; inconclusive otherwise")
    found = layer_group_runs(steering)
    if found is None:
        return Claim(number, claim, paper, source, "", NOT_TESTED,
                     f"{rule}. Not tested: needs intervention runs on all, early+middle and late layers with the same p and alpha")
    task, groups = found
    if any((task, method, "test_id") not in correctness for method in groups.values()):
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no ID predictions of the layer-group runs (--metrics)")
    comparisons = [("early+middle", "all", ">")] + [("late", other, "<") for other in groups if other != "late"]
    parts = []
    for method, other, op in comparisons:
        estimate = Estimate(*paired_bootstrap(correctness[(task, groups[method], "test_id")],
                                              correctness[(task, groups[other], "test_id")], samples, seed))
        parts.append(judge(f"{method} - {other}, ID points", estimate, points, 0, op, layer_group_gain(method, other)))
    return judged(number, claim, paper, source, f"{task}: " + parts_text(parts), parts, rule)


def read_key_shares(paths):
    """One row per key-shift file: method, seed and the overall low / medium / high shares."""
    rows = []
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        rows.append({"method": result["tags"]["method"], "seed": result["tags"].get("seed"),
                     **{region: float(result["overall"][region]) for region in REGIONS}})
    return pl.DataFrame(rows, schema={"method": pl.String, "seed": pl.String, **{region: pl.Float64 for region in REGIONS}})


def claim_key_shift(steering, shares):
    number, claim = "6", "SFT shifts key coefficients into the base model's low region; steering shifts them to medium/high."
    paper, source = "SFT raises the low-region share; Int and Reg lower it and raise medium (and high)", "InfoSteer Sec. 6.1, Fig. 4"
    rule = (ci_rule("the low-region share minus the base model's (Student-t over seeds)", ">", 0) + " for SFT, and the same "
            "with < 0 (the share moved to medium/high) for each steered method")
    base = shares.filter(pl.col("method") == "base")
    steered = [m for m in steered_methods(steering).values() if m is not None and m in set(shares["method"])]
    if base.is_empty() or BASELINE not in set(shares["method"]) or not steered:
        return Claim(number, claim, paper, source, "", NOT_TESTED,
                     f"{rule}. Not tested: needs the base model's, SFT's and a steered method's key shares")
    parts = []
    for method, op in [(BASELINE, ">"), *((m, "<") for m in steered)]:
        runs = shares.filter(pl.col("method") == method)["low"] - base["low"][0]
        parts.append(judge(f"{method} low share - base, points", Estimate(*mean_ci95(runs)), points, 0, op, df=len(runs) - 1))
    return judged(number, claim, paper, source, parts_text(parts), parts, rule)


def flux_gaps(tokens, samples, seed):
    """{method: [samples + 1] content flux minus the unweighted mean flux of the low classes}: on the
    data, then on the two-level bootstrap draws of infoflow.report.flux_tables (the same draws for every method)."""
    sums, counts, methods = unit_sums(tokens)
    means = two_level_bootstrap(sums, counts, samples, seed)
    low = [CLASSES.index(c) for c in LOW_FLUX_CLASSES]
    with np.errstate(invalid="ignore"):  # a class without tokens is left out of the mean (nan)
        gaps = means[:, :, CLASSES.index("content")] - np.nanmean(means[:, :, low], axis=2)
    return {method: gaps[:, i] for i, method in enumerate(methods)}


def claim_flux(steering, tokens, samples, seed):
    number = "7"
    claim = ("Flux is lower on function, punctuation and copied tokens than on content tokens; steering changes that gap "
             "(our own comparison).")
    paper, source = "qualitative: high flux on content spans, low on function words and copied numbers", "InfoSteer Sec. 6.2, Table 5"
    rule = (ci_rule("the gap (content flux minus the mean flux of the function, punctuation and copied classes; two-level "
                    "bootstrap over seeds and prompts)", ">", 0)
            + " for SFT and each steered method; and for each steered method the 95% CI of its gap minus SFT's (paired "
            "draws) excludes 0 (either sign; a CI of exactly 0 is not reproduced)")
    steered = [m for m in steered_methods(steering).values() if m is not None]
    if tokens is None or BASELINE not in set(tokens["method"]) or not set(steered) & set(tokens["method"]):
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: needs flux tokens of SFT and a steered method")
    gaps = flux_gaps(tokens, samples, seed)
    steered = [m for m in steered if m in gaps]
    statistics = [(f"{m} gap", gaps[m], ">") for m in [BASELINE, *steered]]
    statistics += [(f"{m} gap - SFT gap", gaps[m] - gaps[BASELINE], "!=") for m in steered]
    parts = []
    for label, draws, op in statistics:
        estimate = draws_estimate(draws)
        if math.isnan(estimate.value):
            parts.append(Part(label, "no content tokens or none of the low classes", NOT_TESTED))
        else:
            parts.append(judge(f"{label}, nats", estimate, nats, 0, op))
    return judged(number, claim, paper, source, parts_text(parts), parts, rule)

