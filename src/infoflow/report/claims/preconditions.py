"""The claims' preconditions: what the papers' settings have, and a run must have too, for a claim to
test the paper's statement rather than a property of this world. Each is measured on the run and
shown in its claims' rows with the threshold; a claim with a failed precondition is not applicable
(infoflow.report.claims.verdicts), naming the precondition and its value, with the verdict its CI
alone would give beside them. A precondition whose input is missing (a metrics file from before
format_rate was recorded, a pretrained model without cloze recall) is shown as not measured and
leaves the verdict to the CI.

Every threshold is stated once, in PRECONDITIONS, from the figure of the paper named in its reason
(rounded down to a whole percent); none was chosen from a run's verdicts.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from infoflow.report.claims.inforidge import sft_last_point, sft_tasks
from infoflow.report.claims.verdicts import HOLDS, NOT_APPLICABLE, NOT_TESTED, verdict_text
from infoflow.report.comparison import BASELINE


def share(x):
    return f"{100 * x:.1f}%"


def count(x):
    return f"{x:.0f}"


@dataclass(frozen=True)
class Precondition:
    name: str  # what must hold, in words
    quantity: str  # what is measured
    op: str
    threshold: float
    fmt: Callable[[float], str]
    reason: str  # the paper's setting the threshold comes from
    missing: str  # why the quantity can be unmeasured


PRECONDITIONS = {
    "recall": Precondition(
        "the knowledge is in the base model", "the base model's cloze recall", ">=", 0.70, share,
        "InfoSteer steers post-training to use what pretraining stored: its base models answer 70.1% of its knowledge "
        "tasks before any post-training (Table 3; 71.4-81.8% of all its tasks, Tables 1 and 2)",
        "no cloze recall (--recall: the base model was not pretrained here on the knowledge world)"),
    "sft_learned": Precondition(
        "SFT has learned the task", "SFT's ID accuracy", ">=", 0.65, share,
        "the lowest SFT accuracy at which InfoSteer reports a steering gain: 65.7% (GSM8K ID, Table 4)", "no SFT run"),
    "sft_room": Precondition(
        "SFT leaves room", "SFT's ID accuracy", "<=", 0.94, share,
        "the highest SFT accuracy on one task at which InfoSteer reports a steering gain: 94.8% (Gemma-2-9B HellaSwag, Table 1)",
        "no SFT run"),
    "base_format": Precondition(
        "the base model answers in the task format", "the base model's share of OOD answers in the task format", ">=", 0.85,
        share, "InfoSteer's base model scores 85.3% OOD (Table 4), so it answers in the task format at least that often",
        "no format_rate in the base model's OOD metrics (none given, or evaluated before it was recorded)"),
    "task_learned": Precondition(
        "the task is learned", "SFT's ID early-exit accuracy at the last layer", ">=", 0.93, share,
        "InfoRidge reads its ridge in a model that exits at 93.2% ID accuracy at its last layer (GPT-2 small, Table 1)",
        "no early-exit curves of SFT runs"),
    "depth": Precondition(
        "the model is deep enough for a ridge", "transformer blocks", ">=", 12, count,
        "InfoRidge finds the ridge only beyond a depth threshold it does not give; its shallowest model, GPT-2 small, "
        "has 12 blocks (ridge at layer 10, Table 1)", "no information curves of SFT runs"),
    "seeds": Precondition(
        "enough seeds for a CI", "run seeds", ">=", 3, count,
        "both papers average repeated runs (InfoSteer every number over 3 runs, App. A; InfoRidge over 5 sampling seeds, "
        "App. E); with fewer than 3 run seeds the seed level of a CI has 1 or 2 values", "no runs"),
    "sampling_seeds": Precondition(
        "enough sampling seeds for a CI", "sampling seeds", ">=", 3, count,
        "InfoRidge repeats each estimate over 5 sampling seeds (App. E); with fewer than 3 a bootstrap over them has 1 or 2 values",
        "no multi-token information"),
}

# Which preconditions each claim has: InfoSteer's (1-7) rest on knowledge stored in the base model, its
# accuracy claims on an SFT baseline with room to gain, claim 3 on a base model that answers in format;
# InfoRidge's (8-12) on a deep enough model that has learned the task. Seeds: those of the inputs read.
CLAIM_PRECONDITIONS = {
    "1": ("recall", "sft_learned", "sft_room", "accuracy_seeds"),
    "2": ("recall", "sft_learned", "sft_room", "accuracy_seeds"),
    "3": ("recall", "sft_learned", "base_format", "accuracy_seeds"),
    "4": ("recall", "sft_learned", "sft_room", "accuracy_seeds"),
    "5": ("recall", "sft_learned", "sft_room", "accuracy_seeds"),
    "6": ("recall", "key_seeds"),
    "7": ("recall", "flux_seeds"),
    **{n: ("depth", "task_learned", "curve_seeds") for n in ("8", "9", "10", "12")},
    "11": ("depth", "task_learned", "beta_seeds"),
    "13": ("depth", "task_learned", "attention_seeds"),
    # The depth threshold: each depth's model has learned the task, so a missing ridge is not a missing task.
    "14": ("depth_task_learned", "depth_seeds"),
    # Multi-token information is measured on the base model: no post-training run, only its sampling seeds.
    "15": ("multitoken_seeds",),
    "16": ("recall", "sft_learned", "sft_room", "accuracy_seeds"),  # InfoSteer's variants, as claim 1
}


@dataclass(frozen=True)
class Check:
    """A precondition measured on one task or set of runs (`where`; '' for the run); value None: not measured."""

    key: str
    where: str
    value: float | None

    @property
    def precondition(self):
        return PRECONDITIONS[self.key]

    @property
    def holds(self):
        """True or False; None when not measured."""
        return None if self.value is None else bool(HOLDS[self.precondition.op](self.value, self.precondition.threshold))

    def measured(self):
        """'name: quantity (where) value, needs op threshold'."""
        p = self.precondition
        where = f" ({self.where})" if self.where else ""
        return f"{p.name}: {p.quantity}{where} {p.fmt(self.value)}, needs {p.op} {p.fmt(p.threshold)}"

    def text(self):
        if self.holds is None:
            return f"{self.precondition.name}: not measured, {self.precondition.missing}"
        return f"{self.measured()}: {'holds' if self.holds else 'fails'}"


def read_recall(path):
    """The base model's cloze recall (infoflow.world evaluation metrics.json), None without a file."""
    return None if path is None else float(json.loads(Path(path).read_text())["accuracy"])


def read_format_rates(paths):
    """{(task, split): mean format_rate of the base model's metrics files}, None where one has no format_rate."""
    rates = {}
    for path in paths:
        metrics = json.loads(Path(path).read_text())
        rates.setdefault((metrics["tags"]["task"], metrics["tags"]["split"]), []).append(metrics.get("format_rate"))
    return {key: None if None in values else float(np.mean(values)) for key, values in rates.items()}


def per_task(key, tasks, value_of):
    """[Check] of precondition `key` on each task (one not measured without tasks)."""
    return [Check(key, task, value_of(task)) for task in tasks] or [Check(key, "", None)]


def fewest_seeds(frame, by, seed, runs, key="seeds"):
    """[Check] of precondition `key`: the fewest distinct `seed` values in any group `by` of `frame` (not measured without rows)."""
    if frame is None or frame.is_empty():
        return [Check(key, runs, None)]
    return [Check(key, runs, frame.group_by(by).agg(pl.col(seed).n_unique())[seed].min())]


def sft_id_accuracy(steering, task):
    row = steering.filter((pl.col("task") == task) & (pl.col("method") == BASELINE) & (pl.col("split") == "test_id"))
    return None if row.is_empty() else row["accuracy_mean"][0]


def last_layer_exit(early_exit, task, method=BASELINE):
    """Mean over the runs of `method` (default SFT) of the ID early-exit accuracy at the raw last layer, last
    checkpoint (as claim 9 reads it); None without them."""
    part = sft_last_point(early_exit, task, method).filter((pl.col("split") == "test_id") & ~pl.col("final_norm"))
    return None if part.is_empty() else float(part.filter(pl.col("layer") == part["layer"].max())["accuracy"].mean())


def attention_sft(masses):
    return None if masses is None else masses.filter(pl.col("method") == BASELINE)


def measure(inputs):
    """{precondition group of CLAIM_PRECONDITIONS: [Check]} on check.main's inputs."""
    steering, mi = inputs["steering"], inputs["mi"]
    # the tasks of steered runs: not those of other SFT runs (the depth analysis's, from other base models)
    steered = sorted(set(steering.filter(pl.col("kind") != "sft")["task"]))
    ridge_tasks = sft_tasks(mi)
    sft_curves = mi.filter(pl.col("method") == BASELINE)
    depth_task = inputs["depth_task"]
    return {
        "recall": [Check("recall", "", inputs["recall"])],
        "sft_learned": per_task("sft_learned", steered, lambda task: sft_id_accuracy(steering, task)),
        "sft_room": per_task("sft_room", steered, lambda task: sft_id_accuracy(steering, task)),
        "base_format": per_task("base_format", steered, lambda task: inputs["format_rates"].get((task, "test_ood"))),
        "task_learned": per_task("task_learned", ridge_tasks, lambda task: last_layer_exit(inputs["early_exit"], task)),
        "depth": per_task("depth", ridge_tasks, lambda task: sft_curves.filter(pl.col("task") == task)["layer"].max()),
        "accuracy_seeds": [Check("seeds", "accuracy runs", steering.filter(pl.col("task").is_in(steered))["seeds"].min())],
        "key_seeds": fewest_seeds(inputs["key_shares"].filter(pl.col("method") != "base"), "method", "seed", "key shares"),
        "flux_seeds": fewest_seeds(inputs["flux_tokens"], "method", "seed", "flux"),
        "curve_seeds": fewest_seeds(sft_curves, "task", "seed", "information curves"),
        "beta_seeds": fewest_seeds(inputs["betas"].filter(pl.col("method") == BASELINE), "task", "run_seed", "residual scaling"),
        "depth_task_learned": [Check("task_learned", f"{depth_task} {method}", last_layer_exit(inputs["early_exit"], depth_task, method))
                               for method in inputs["depth_methods"]] or [Check("task_learned", "", None)],
        "depth_seeds": fewest_seeds(mi.filter((pl.col("task") == depth_task) & pl.col("method").is_in(inputs["depth_methods"])),
                                    "method", "seed", "depth runs"),
        "multitoken_seeds": fewest_seeds(inputs.get("multitoken"), ["task", "sets"], "sample_seed", "multi-token information",
                                         key="sampling_seeds"),
        # inputs without attention masses (get): the seeds are not measured
        "attention_seeds": fewest_seeds(attention_sft(inputs.get("attention")), "task", "seed", "attention"),
    }


def with_preconditions(claim, checks):
    """The claim with its preconditions shown; not applicable when one fails (unless it is not tested:
    then the run lacks what the claim needs, whatever its preconditions)."""
    failed = [c for c in checks if c.holds is False]
    shown = replace(claim, preconditions="; ".join(c.text() for c in checks))
    if not failed or claim.verdict == NOT_TESTED:
        return shown
    named = "; ".join(c.measured() for c in failed)
    return replace(shown, verdict=NOT_APPLICABLE, detail=f"{named}; by its CI alone: {verdict_text(claim)}")


def applied(claims, checks):
    """Every claim with the preconditions CLAIM_PRECONDITIONS gives it, measured in `checks` (measure())."""
    return [with_preconditions(c, [check for group in CLAIM_PRECONDITIONS[c.number] for check in checks[group]]) for c in claims]


def preconditions_frame():
    """The thresholds and their reasons, one row each (claims.md)."""
    rules = PRECONDITIONS.values()
    return pl.DataFrame({"precondition": [p.name for p in rules], "measured": [p.quantity for p in rules],
                         "threshold": [f"{p.op} {p.fmt(p.threshold)}" for p in rules], "why": [p.reason for p in rules]})
