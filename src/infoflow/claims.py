"""The papers' claims, one row each: the paper's figure, this run's measurement with a 95% CI, and a
verdict by a rule stated in the row (results/claims.md for people, claims.csv for machines).

Verdicts: a claim is a statement `statistic OP threshold` (for example ID accuracy of the
intervention minus SFT > 0). It is
  reproduced      if the whole 95% CI satisfies it,
  not reproduced  if no point of the CI does,
  inconclusive    if the CI contains the threshold, or there is no CI (one seed);
  not tested      if the run lacks what the claim needs (a method, a kernel, a file), with the reason.
A claim of several parts (several tasks, methods or comparisons) is reproduced if every part is,
not reproduced if any part is not, not tested if no part could be, and inconclusive otherwise.

Uncertainty, reused from the tables: accuracy differences are the paired bootstrap of
infoflow.comparison (seeds and test items); key shares the Student-t interval over seeds
(infoflow.stats); flux, information curves, early exit and betas the two-level bootstrap of
infoflow.flux_report (run seeds, then prompts / sampling seeds / fit seeds). Statistics of the
curves (the ridge layer, distances, drops) are computed on every bootstrap draw of the curves.
"""

import argparse
import json
import math
import operator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from infoflow import cli
from infoflow.comparison import BASELINE, paired_bootstrap, read_correctness
from infoflow.flux_report import bootstrap_means, read_tokens, unit_sums
from infoflow.io import DataError, write_csv, write_text
from infoflow.ridge_report import read_all
from infoflow.stats import mean_ci95
from infoflow.tables import markdown
from infoflow.token_classes import CLASSES

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED = "reproduced", "not reproduced", "inconclusive", "not tested"
HOLDS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
# The paper's default settings: among several runs of a kind, the claims use the closest one.
INTERVENTION_DEFAULT = {"p": 0.01, "alpha": 1.0}
REGULARIZATION_DEFAULT = {"lam": 0.01}
NEGATIVE_LAMBDA_DEFAULT = {"lam": -0.01}
LOW_FLUX_CLASSES = ("function", "punctuation", "copied")
RIDGE_BAND = (0.5, 0.9)  # depth fractions of "upper-middle" layers; the paper's ridge is 10/12 = 0.83


@dataclass(frozen=True)
class Estimate:
    """A statistic and its 95% CI (nan bounds: no CI)."""

    value: float
    low: float
    high: float

    def text(self, fmt):
        interval = "no CI" if math.isnan(self.low) or math.isnan(self.high) else f"{fmt(self.low)}, {fmt(self.high)}"
        return f"{fmt(self.value)} [{interval}]"


@dataclass(frozen=True)
class Claim:
    number: str
    claim: str
    paper: str
    source: str
    measurement: str
    verdict: str
    rule: str


def verdict(estimate, threshold, op):
    """Whether `statistic op threshold` holds over the whole 95% CI, none of it, or part of it; op '!='
    (a change of either sign) holds where the CI lies on one side of the threshold."""
    if math.isnan(estimate.low) or math.isnan(estimate.high):
        return INCONCLUSIVE
    if op == "!=":
        return any_of([verdict(estimate, threshold, ">"), verdict(estimate, threshold, "<")])
    holds = [HOLDS[op](end, threshold) for end in (estimate.low, estimate.high)]  # ops are monotone: the ends decide
    return REPRODUCED if all(holds) else NOT_REPRODUCED if not any(holds) else INCONCLUSIVE


def all_of(verdicts):
    """A conjunction: any part not reproduced fails it; a part not tested leaves it open."""
    verdicts = list(verdicts)
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT_TESTED if all(v == NOT_TESTED for v in verdicts) else INCONCLUSIVE


def any_of(verdicts):
    """A disjunction: one part reproduced is enough."""
    verdicts = list(verdicts)
    if REPRODUCED in verdicts:
        return REPRODUCED
    return NOT_REPRODUCED if all(v == NOT_REPRODUCED for v in verdicts) else INCONCLUSIVE


def ci_rule(statistic, op, threshold):
    return (f"reproduced if the whole 95% CI of {statistic} is {op} {threshold}; not reproduced if none of it is; "
            f"inconclusive if it straddles {threshold} or there is no CI")


def parts_text(parts):
    """'label: estimate (verdict); ...' for a claim's parts [(label, text, verdict)]."""
    return "; ".join(f"{label}: {text} ({v})" for label, text, v in parts)


def points(x):
    return f"{100 * x:+.1f}"


def nats(x):
    return f"{x:+.3f}"


def fraction(x):
    return f"{x:.2f}"


def beta(x):
    return f"{x:+.3g}"


def draws_estimate(draws):
    """Estimate from bootstrap draws: row 0 is the statistic on the data, the rest its draws."""
    draws = np.asarray(draws, dtype=float)
    if np.isnan(draws[1:]).all():
        return Estimate(float(draws[0]), math.nan, math.nan)
    low, high = np.nanpercentile(draws[1:], [2.5, 97.5])
    return Estimate(float(draws[0]), float(low), float(high))


# --- which runs a claim reads -------------------------------------------------------------------


def choose_method(steering, kind, defaults, keep=None):
    """The steered method of `kind` nearest the paper's setting: all layers first, then the smallest
    distance of its parameters to `defaults`; None when the run has none (after `keep`, a row filter)."""
    methods = steering[steering.kind == kind].drop_duplicates("method")
    if keep is not None:
        methods = methods[keep(methods)]
    if methods.empty:
        return None
    distance = sum((methods[name] - value).abs() for name, value in defaults.items())
    order = pd.DataFrame({"partial": methods.layers != "all", "distance": distance, "method": methods.method})
    return order.sort_values(["partial", "distance", "method"]).method.iloc[0]


def steered_methods(steering):
    """{'intervention': name or None, 'regularization': name or None}: the runs standing for "steering"."""
    return {
        "intervention": choose_method(steering, "intervention", INTERVENTION_DEFAULT),
        "regularization": choose_method(steering, "regularization", REGULARIZATION_DEFAULT, keep=lambda m: m.lam > 0),
    }


def describe(steering, method):
    """'name (p=0.01, alpha=1, layers all)' from the steering table's parameter columns."""
    row = steering[steering.method == method].iloc[0]
    params = [f"{name}={row[name]:g}" for name in ("p", "alpha", "lam") if not pd.isna(row[name])]
    return f"{method} ({', '.join(params)}, layers {row.layers})"


def steering_row(steering, task, method, split="test_id"):
    return steering[(steering.task == task) & (steering.method == method) & (steering.split == split)].iloc[0]


# --- InfoSteer ------------------------------------------------------------------------------------


def steered_vs_sft(number, claim, paper, source, steering, method, missing, op):
    """A steered method's ID accuracy against SFT on every task it ran (steering_vs_sft.csv)."""
    rule = ci_rule("the ID accuracy difference (method - SFT, paired bootstrap over seeds and test items)", op, 0)
    rule += " (on every task the method ran)"
    if method is None:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: {missing}")
    tasks = sorted(set(steering[steering.method == method].task) & set(steering[steering.method == BASELINE].task))
    if not tasks:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no SFT run on the tasks of {method}")
    parts = []
    for task in tasks:
        row = steering_row(steering, task, method)
        estimate = Estimate(row.diff_vs_sft, row.diff_ci95_low, row.diff_ci95_high)
        levels = f"{100 * steering_row(steering, task, BASELINE).accuracy_mean:.1f}% -> {100 * row.accuracy_mean:.1f}%"
        parts.append((f"{task}, ID accuracy minus SFT's ({levels}), points", estimate.text(points), verdict(estimate, 0, op)))
    return Claim(number, claim, paper, source, f"{describe(steering, method)}: " + parts_text(parts), all_of(v for *_, v in parts), rule)


def claim_intervention_id(steering):
    return steered_vs_sft(
        "1", "InfoSteer's intervention raises ID accuracy over SFT.", "+1.7 to +2.6 points (8-task average, six models)",
        "InfoSteer Table 1", steering, steered_methods(steering)["intervention"], "no method of kind intervention in this run", ">")


def claim_regularization_id(steering):
    return steered_vs_sft(
        "2", "InfoSteer's entropy regularisation raises ID accuracy over SFT.", "+1.0 to +1.8 points (8-task average, six models)",
        "InfoSteer Table 1", steering, steered_methods(steering)["regularization"],
        "no method of kind regularization with lam > 0 in this run", ">")


def claim_negative_lambda(steering):
    method = choose_method(steering, "regularization", NEGATIVE_LAMBDA_DEFAULT, keep=lambda m: m.lam < 0)
    return steered_vs_sft(
        "4", "Entropy minimisation (lambda < 0) does worse than SFT.", "72.3 vs SFT 72.6 average accuracy (lambda = -0.01)",
        "InfoSteer Table 2", steering, method, "no method of kind regularization with lam < 0 in this run", "<")


def base_like(base, runs):
    """The base model's correctness [1, items] repeated for every seed of `runs`: one fixed model,
    so paired_bootstrap resamples the runs' seeds and the shared items against the same answers."""
    return pd.DataFrame(np.repeat(base.to_numpy()[:1], len(runs), axis=0), index=runs.index, columns=base.columns)


def claim_ood(steering, correctness, base_correctness, samples, seed):
    number, claim = "3", "SFT lowers OOD accuracy below the base model's, while steered post-training raises it."
    paper, source = "base 85.3, SFT 83.7 (-1.6), Int 86.6 (+1.3), Reg 86.0 (+0.7) OOD average", "InfoSteer Table 4"
    rule = (ci_rule("OOD accuracy minus the base model's (paired bootstrap over seeds and test items)", "<", 0)
            + " for SFT, and the same with > 0 for each steered method; every part on every task with a steered run")
    steered = [m for m in steered_methods(steering).values() if m is not None]
    base = {task: frame for (task, _, split), frame in base_correctness.items() if split == "test_ood"}
    tasks = sorted(set(steering[steering.method.isin(steered)].task) & set(base))
    if not steered or not tasks:
        reason = "no steered method in this run" if not steered else "the base model was not evaluated on the OOD split (--base-metrics)"
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: {reason}")
    parts = []
    for task in tasks:
        for method, op in [(BASELINE, "<"), *((m, ">") for m in steered)]:
            runs = correctness.get((task, method, "test_ood"))
            if runs is None:
                continue
            estimate = Estimate(*paired_bootstrap(runs, base_like(base[task], runs), samples, seed))
            parts.append((f"{task}, {method} - base, OOD points", estimate.text(points), verdict(estimate, 0, op)))
    return Claim(number, claim, paper, source, parts_text(parts), all_of(v for *_, v in parts), rule)


def layer_group_runs(steering):
    """(task, {layers: method}) of the first intervention setting (p, alpha) run on all, early+middle
    and late layers alike; None if there is none."""
    runs = steering[steering.kind == "intervention"].drop_duplicates(["task", "method"])
    for (task, _, _), same in runs.groupby(["task", "p", "alpha"]):
        groups = dict(zip(same.layers, same.method))
        if {"all", "early+middle", "late"} <= set(groups):
            return task, groups
    return None


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
        parts.append((f"{method} - {other}, ID points", estimate.text(points), verdict(estimate, 0, op)))
    return Claim(number, claim, paper, source, f"{task}: " + parts_text(parts), all_of(v for *_, v in parts), rule)


def read_key_shares(paths):
    """One row per key-shift file: method, seed and the overall low / medium / high shares."""
    rows = []
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        rows.append({"method": result["tags"]["method"], "seed": result["tags"].get("seed"), **result["overall"]})
    return pd.DataFrame(rows, columns=["method", "seed", "low", "medium", "high"])


def claim_key_shift(steering, shares):
    number, claim = "6", "SFT shifts key coefficients into the base model's low region; steering shifts them to medium/high."
    paper, source = "SFT raises the low-region share; Int and Reg lower it and raise medium (and high)", "InfoSteer Sec. 6.1, Fig. 4"
    rule = (ci_rule("the low-region share minus the base model's (Student-t over seeds)", ">", 0) + " for SFT, and the same "
            "with < 0 (the share moved to medium/high) for each steered method")
    base = shares[shares.method == "base"]
    steered = [m for m in steered_methods(steering).values() if m is not None and m in set(shares.method)]
    if base.empty or BASELINE not in set(shares.method) or not steered:
        return Claim(number, claim, paper, source, "", NOT_TESTED,
                     f"{rule}. Not tested: needs the base model's, SFT's and a steered method's key shares")
    parts = []
    for method, op in [(BASELINE, ">"), *((m, "<") for m in steered)]:
        estimate = Estimate(*mean_ci95(shares[shares.method == method].low - base.low.iloc[0]))
        parts.append((f"{method} low share - base, points", estimate.text(points), verdict(estimate, 0, op)))
    return Claim(number, claim, paper, source, parts_text(parts), all_of(v for *_, v in parts), rule)


def flux_gaps(tokens, samples, seed):
    """{method: [samples + 1] content flux minus the unweighted mean flux of the low classes}: on the
    data, then on the two-level bootstrap draws of infoflow.flux_report (the same draws for every method)."""
    sums, counts, methods = unit_sums(tokens)
    means = bootstrap_means(sums, counts, samples, seed)
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
    if tokens is None or BASELINE not in set(tokens.method) or not set(steered) & set(tokens.method):
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: needs flux tokens of SFT and a steered method")
    gaps = flux_gaps(tokens, samples, seed)
    steered = [m for m in steered if m in gaps]
    statistics = [(f"{m} gap", gaps[m], ">") for m in [BASELINE, *steered]]
    statistics += [(f"{m} gap - SFT gap", gaps[m] - gaps[BASELINE], "!=") for m in steered]
    parts = []
    for label, draws, op in statistics:
        estimate = draws_estimate(draws)
        if math.isnan(estimate.value):
            parts.append((label, "no content tokens or none of the low classes", NOT_TESTED))
        else:
            parts.append((f"{label}, nats", estimate.text(nats), verdict(estimate, 0, op)))
    return Claim(number, claim, paper, source, parts_text(parts), all_of(v for *_, v in parts), rule)


# --- InfoRidge ------------------------------------------------------------------------------------

LAYER_ROWS = ["final_norm", "layer"]  # a layer row: raw layers 0..L, then layer L after the final norm where extracted


def sft_last_point(frame, task):
    part = frame[(frame.task == task) & (frame.method == BASELINE)]
    return part[part.point == part.point.max()]


def sft_tasks(mi):
    return sorted(mi[mi.method == BASELINE].task.unique())


def grid(frame, value, inner=None, columns=LAYER_ROWS):
    """([run seeds, inner values, columns] of `value`, run seeds, column keys) from a long table of
    every run seed x inner value (sampling or fit seed; one value without `inner`) x column."""
    table = frame.pivot_table(index=["seed"] if inner is None else ["seed", inner], columns=columns, values=value)
    seeds = sorted(frame.seed.unique())
    return table.to_numpy().reshape(len(seeds), -1, table.shape[1]), seeds, list(table.columns)


def two_level_draws(grids, samples, seed):
    """[samples + 1, curves, columns] from grids [curves, run seeds, inner, columns]: the mean curves on
    the data, then the two-level bootstrap of infoflow.flux_report (run seeds, then inner seeds)."""
    return bootstrap_means(grids, np.ones_like(grids), samples, seed)


def information_grid(mi, task):
    """I(Z;Y) of the SFT runs' last checkpoint on the ID sample: grid() over sampling seeds and layer rows."""
    part = sft_last_point(mi, task)
    return grid(part[(part.quantity == "hidden") & (part.split == "test_id")], "mi", "sample_seed")


def raw_rows(keys):
    """Indices and layer numbers of the raw layer rows (before any final norm)."""
    index = [i for i, (final, _) in enumerate(keys) if not final]
    return index, np.array([keys[i][1] for i in index])


def ridge_layer_draws(mi, task, samples, seed):
    """([samples + 1] ridge layers: argmax over raw layers of the mean I(Z;Y) curve, data then draws; the last layer)."""
    curves, _, keys = information_grid(mi, task)
    index, layers = raw_rows(keys)
    return layers[two_level_draws(curves[None], samples, seed)[:, 0, index].argmax(axis=1)], layers.max()


def ridge_band_verdict(estimate):
    low, high = RIDGE_BAND
    return all_of([verdict(estimate, low, ">="), verdict(estimate, high, "<=")])


RIDGE_RULE = (f"reproduced if the 95% CI of the ridge layer's depth fraction (argmax of mean I(Z;Y) over raw layers 0..L, "
              f"divided by L; SFT, last checkpoint, ID sample; two-level bootstrap over run and sampling seeds) lies within "
              f"[{RIDGE_BAND[0]}, {RIDGE_BAND[1]}], so below the last layer; not reproduced if it lies entirely outside; "
              f"inconclusive otherwise")


def ridge_parts(mi, samples, seed):
    parts = []
    for task in sft_tasks(mi):
        ridges, last = ridge_layer_draws(mi, task, samples, seed)
        estimate = draws_estimate(ridges / last)
        parts.append((f"{task}, ridge layer {ridges[0]} of {last}, depth fraction", estimate.text(fraction), ridge_band_verdict(estimate)))
    return parts


def claim_ridge_depth(mi, samples, seed):
    number, claim = "8", "Predictive information I(Z;Y) is non-monotonic in depth: the ridge layer lies inside, at 0.5-0.9 of depth."
    paper, source = "ridge at layer 10 of 12 (0.83); I(Z;Y) 0.272 there, 0.019 at layer 12 (GPT-2 small)", "InfoRidge Table 1"
    parts = ridge_parts(mi, samples, seed)
    if not parts:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{RIDGE_RULE}. Not tested: no information curves of SFT runs")
    return Claim(number, claim, paper, source, parts_text(parts), all_of(v for *_, v in parts), RIDGE_RULE + "; every task")


def early_exit_draws(mi, early_exit, task, samples, seed):
    """Joint draws [samples + 1, 3, raw layers] of I(Z;Y) (ID) and early-exit accuracy on ID and OOD over
    the same run-seed resamples (exit accuracy repeated over the sampling seeds), and the raw layers."""
    curves, seeds, keys = information_grid(mi, task)
    part = sft_last_point(early_exit, task)
    exits = [grid(part[part.split == split], "accuracy") for split in ("test_id", "test_ood")]
    if any(s != seeds or k != keys for _, s, k in exits):
        raise DataError(f"{task}: the early-exit and information tables cover different SFT runs or layers")
    grids = np.stack([curves, *(np.broadcast_to(e, curves.shape) for e, _, _ in exits)])
    index, layers = raw_rows(keys)
    return two_level_draws(grids, samples, seed)[..., index], layers


def nearest_best_distance(ridge, accuracy, layers):
    """Layers from the ridge to the nearest layer of highest accuracy; nan when accuracy is 0 everywhere."""
    if accuracy.max() <= 0:
        return math.nan
    return np.abs(layers[np.isclose(accuracy, accuracy.max())] - ridge).min()


def claim_ridge_early_exit(mi, early_exit, samples, seed):
    number, claim = "9", "The ridge layer is at or next to the best OOD early-exit layer, while ID early exit peaks at the last layer."
    paper, source = "ridge and best OOD exit both layer 10 (56.9%); ID exit highest at layer 12 (93.2%)", "InfoRidge Table 1"
    rule = ("reproduced if the 95% CI of the distance in layers from the ridge layer to the nearest layer of highest OOD "
            "early-exit accuracy lies at or below 1, and that of the highest ID early-exit accuracy minus the last layer's "
            "lies at 0 (joint two-level bootstrap of both curves; SFT, last checkpoint, raw layers); not reproduced if either "
            "lies entirely above; inconclusive otherwise; every task")
    tasks = sorted(set(sft_tasks(mi)) & set(early_exit[early_exit.method == BASELINE].task))
    if not tasks:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no information and early-exit curves of SFT runs")
    parts = []
    for task in tasks:
        draws, layers = early_exit_draws(mi, early_exit, task, samples, seed)
        ridges = layers[draws[:, 0].argmax(axis=1)]
        distance = draws_estimate([nearest_best_distance(r, d[2], layers) for r, d in zip(ridges, draws)])
        if math.isnan(distance.value):
            parts.append((f"{task}, ridge to best OOD exit", "OOD early-exit accuracy is 0 at every layer", NOT_TESTED))
        else:
            parts.append((f"{task}, ridge to best OOD exit, layers", distance.text(lambda x: f"{x:.1f}"), verdict(distance, 1, "<=")))
        if draws[0, 1].max() <= 0:
            parts.append((f"{task}, ID exit peak", "ID early-exit accuracy is 0 at every layer", NOT_TESTED))
        else:
            id_gap = draws_estimate(draws[:, 1].max(axis=1) - draws[:, 1, -1])
            parts.append((f"{task}, best minus last-layer ID exit, points", id_gap.text(points), verdict(id_gap, 0, "<=")))
    return Claim(number, claim, paper, source, parts_text(parts), all_of(v for *_, v in parts), rule)


def claim_raw_last_layer(mi, samples, seed):
    number, claim = "10", "The final-layer drop of I(Z;Y) remains when the last layer is read before the final norm."
    paper = "the paper reads the last layer as Hugging Face returns it, after the final norm (0.272 at layer 10, 0.019 at 12)"
    source = "our check of InfoRidge Table 1"
    rule = (ci_rule("the drop: I(Z;Y) at the ridge layer minus at the raw last layer (two-level bootstrap; SFT, last "
                    "checkpoint, ID sample)", ">", 0) + "; every task. The drop is 0 when the ridge is the last layer")
    parts, context = [], []
    for task in sft_tasks(mi):
        curves, _, keys = information_grid(mi, task)
        index, layers = raw_rows(keys)
        if layers.max() < max(layer for _, layer in keys):
            return Claim(number, claim, paper, source, "", NOT_TESTED,
                         f"{rule}. Not tested: the last layer was read only after the final norm (inforidge.extraction.last_layer)")
        draws = two_level_draws(curves[None], samples, seed)[:, 0]
        peak = draws[:, index].max(axis=1)
        drop = draws_estimate(peak - draws[:, index[-1]])
        parts.append((f"{task}, drop to the raw last layer, nats", drop.text(nats), verdict(drop, 0, ">")))
        if (True, layers.max()) in keys:
            normed = draws_estimate(peak - draws[:, keys.index((True, layers.max()))])
            context.append(f"{task}, drop to the last layer after the final norm: {normed.text(nats)}")
    if not parts:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no information curves of SFT runs")
    measurement = parts_text(parts) + "".join(f"; context (not judged): {c}" for c in context)
    return Claim(number, claim, paper, source, measurement, all_of(v for *_, v in parts), rule)


def claim_residual_scaling(mi, betas, samples, seed):
    number, claim = "11", "Betas fitted on OOD data are lower on the last layer and higher on the ridge layer than betas fitted on ID data."
    paper, source = "OOD-fitted betas lower on the last layers, higher on the middle (ridge) layers", "InfoRidge Sec. 4 (residual scaling), Fig. 4"
    rule = (ci_rule("beta(OOD fit) - beta(ID fit) of the last block (two-level bootstrap over run seeds and fit seeds; SFT)", "<", 0)
            + ", and the same with > 0 for the block whose output is the ridge layer (claim 8's estimate); every task")
    fitted = betas[betas.method == BASELINE].rename(columns={"seed": "fit_seed", "run_seed": "seed"})
    tasks = sorted(set(fitted.task) & set(sft_tasks(mi)))
    if not tasks:
        return Claim(number, claim, paper, source, "", NOT_TESTED,
                     f"{rule}. Not tested: no residual scaling fits of SFT runs with information curves (inforidge.residual_scaling.methods)")
    parts = []
    for task in tasks:
        part = fitted[fitted.task == task]
        (ood, _, blocks), (fit_id, _, _) = (grid(part[part.fit_split == s], "beta", "fit_seed", columns="layer") for s in ("ood", "id"))
        draws = two_level_draws((ood - fit_id)[None], samples, seed)[:, 0]
        last = draws_estimate(draws[:, -1])
        parts.append((f"{task}, last block {blocks[-1]}", last.text(beta), verdict(last, 0, "<")))
        ridge = ridge_layer_draws(mi, task, 0, seed)[0][0]
        if ridge in blocks[:-1]:
            at_ridge = draws_estimate(draws[:, blocks.index(ridge)])
            parts.append((f"{task}, ridge block {ridge}", at_ridge.text(beta), verdict(at_ridge, 0, ">")))
        else:
            parts.append((f"{task}, ridge block", f"the ridge is layer {ridge}: no block but the last or none is the ridge's", NOT_TESTED))
    return Claim(number, claim, paper, source, parts_text(parts), all_of(v for *_, v in parts), rule)


def claim_kernels(settings, samples, seed):
    """`settings`: [(kernel, sigma, mi frame)], the run's own estimator first."""
    number, claim = "12", "The ridge of claim 8 holds under Laplacian and polynomial kernels, and across kernel widths (our extension)."
    paper, source = "other kernels change the magnitude of the curves, not their trend (widths not varied)", "InfoRidge App. E, Fig. 8"
    rule = RIDGE_RULE + ", under every kernel setting and task; judged only when Laplacian and polynomial estimates exist"
    missing = [k for k in ("laplacian", "polynomial") if k not in {kernel for kernel, _, _ in settings}]
    run = ", ".join(f"{kernel} (sigma {sigma:g})" for kernel, sigma, _ in settings)
    if missing:
        return Claim(number, claim, paper, source, "", NOT_TESTED,
                     f"{rule}. Not tested: I(Z;Y) was estimated with {run or 'no kernel'} only; {' and '.join(missing)} not run")
    parts = [(f"{kernel} sigma {sigma:g}, {label}", text, v)
             for kernel, sigma, mi in settings for label, text, v in ridge_parts(mi, samples, seed)]
    widths = {kernel: len({sigma for k, sigma, _ in settings if k == kernel}) for kernel, _, _ in settings}
    note = "" if any(n > 1 for n in widths.values()) else " (one width per kernel: widths not varied)"
    return Claim(number, claim, paper, source, parts_text(parts) + note, all_of(v for *_, v in parts), rule)


# --- command line ---------------------------------------------------------------------------------


def all_claims(inputs, samples, seed):
    """Every claim, in order, from the loaded inputs (see main for what each one is)."""
    steering, mi = inputs["steering"], inputs["mi"]
    return [
        claim_intervention_id(steering),
        claim_regularization_id(steering),
        claim_ood(steering, inputs["correctness"], inputs["base_correctness"], samples, seed),
        claim_negative_lambda(steering),
        claim_layer_groups(steering, inputs["correctness"], samples, seed),
        claim_key_shift(steering, inputs["key_shares"]),
        claim_flux(steering, inputs["flux_tokens"], samples, seed),
        claim_ridge_depth(mi, samples, seed),
        claim_ridge_early_exit(mi, inputs["early_exit"], samples, seed),
        claim_raw_last_layer(mi, samples, seed),
        claim_residual_scaling(mi, inputs["betas"], samples, seed),
        claim_kernels(inputs["kernel_settings"], samples, seed),
    ]


def claims_markdown(claims):
    table = pd.DataFrame([asdict(c) for c in claims])
    counts = table.verdict.value_counts()
    summary = ", ".join(f"{v}: {counts.get(v, 0)}" for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED))
    shown = pd.DataFrame({"#": table.number, "claim": table.claim, "paper": table.paper + " (" + table.source + ")",
                          "this run (95% CI)": table.measurement, "verdict": "**" + table.verdict + "**", "rule": table.rule})
    return markdown(shown, "Claims of InfoSteer and InfoRidge on this run") + f"\n{summary}\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steering", required=True, help="results/tables/steering_vs_sft.csv")
    parser.add_argument("--metrics", nargs="*", default=[], help="evaluation metrics files of the runs (predictions CSVs beside them)")
    parser.add_argument("--base-metrics", nargs="*", default=[], help="the base model's metrics files on the test splits (tags task, method, seed, split)")
    parser.add_argument("--key-shares", nargs="*", default=[], help="key-shift JSON files: the base model's and every run's")
    parser.add_argument("--flux-tokens", nargs="*", default=[], help="flux Parquet files of the runs")
    parser.add_argument("--mi", nargs="*", default=[], help="per-run ridge/mi.csv files")
    parser.add_argument("--early-exit", nargs="*", default=[], help="per-run ridge/early_exit.csv files")
    parser.add_argument("--betas", nargs="*", default=[], help="per-run residual_scaling/betas.csv files")
    parser.add_argument("--kernel", required=True, help="the kernel the --mi files were estimated with")
    parser.add_argument("--sigma", type=float, required=True, help="its width")
    parser.add_argument("--kernel-mi", nargs="*", default=[],
                        help="per-run CSV files of infoflow.kernel_check: I(Z;Y) under other kernel settings")
    parser.add_argument("--bootstrap-samples", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--csv", required=True)
    args = parser.parse_args(argv)
    mi_columns = ["task", "method", "seed", "point", "split", "quantity", "layer", "final_norm", "sample_seed", "mi"]
    mi = read_all(args.mi, mi_columns)
    other_kernels = read_all(args.kernel_mi, [*mi_columns, "kernel", "sigma"])
    settings = [(args.kernel, args.sigma, mi)] + [
        (kernel, sigma, frame.drop(columns=["kernel", "sigma"])) for (kernel, sigma), frame in other_kernels.groupby(["kernel", "sigma"])
    ]
    inputs = {
        "steering": pd.read_csv(args.steering),
        "correctness": read_correctness(args.metrics),
        "base_correctness": read_correctness(args.base_metrics),
        "key_shares": read_key_shares(args.key_shares),
        "flux_tokens": read_tokens(args.flux_tokens)[0] if args.flux_tokens else None,
        "mi": mi,
        "early_exit": read_all(args.early_exit, ["task", "method", "seed", "point", "split", "layer", "final_norm", "accuracy"]),
        "betas": read_all(args.betas, ["task", "method", "run_seed", "seed", "fit_split", "layer", "beta"]),
        "kernel_settings": settings,
    }
    claims = all_claims(inputs, args.bootstrap_samples, args.seed)
    write_csv(args.csv, pd.DataFrame([asdict(c) for c in claims]))
    write_text(args.markdown, claims_markdown(claims))


if __name__ == "__main__":
    cli.run(main)
