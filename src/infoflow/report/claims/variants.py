"""InfoSteer's claim on its fine-grained variants (16): each matches or beats the plain intervention.

Each variant run is held against the intervention run claim 1 reads (infoflow.report.claims.infosteer's
steered_methods), by the paired bootstrap over seeds and test items of infoflow.report.stats, as claim 5
holds layer groups against each other; the paper's effect of a variant is its mean gain over Int across
the six models of Tables 6 and 7 (VARIANT_GAINS, computed from VARIANT_ACCURACY).
"""

import numpy as np
import polars as pl

from infoflow.report.claims.infosteer import INTERVENTION_DEFAULT, REGULARIZATION_DEFAULT, choose_method, steered_methods
from infoflow.report.claims.verdicts import NOT_TESTED, Claim, Estimate, ci_rule, judge, judged, parts_text, points
from infoflow.report.stats import paired_bootstrap

# 8-task average accuracy per model (the notes' table): Int from Table 1, the variants from Tables 6 and 7.
VARIANT_COLUMNS = ("intervention", "semantic", "activation", "selected", "entmax")
VARIANT_ACCURACY = {
    "Qwen-2.5-1.5B": (80.20, 81.75, 80.81, 80.97, 80.09),
    "LLaMA-3.2-1B": (79.69, 81.33, 80.43, 81.03, 80.05),
    "Gemma-2-2B": (81.79, 82.96, 82.08, 82.77, 81.61),
    "Qwen-2.5-7B": (83.58, 84.61, 84.01, 84.59, 83.75),
    "LLaMA-3-8B": (86.81, 87.85, 86.89, 87.79, 86.66),
    "Gemma-2-9B": (87.67, 88.94, 87.91, 88.84, 87.51),
}
VARIANTS = VARIANT_COLUMNS[1:]


def variant_gains():
    """{variant: mean over the six models of its accuracy minus Int's (a fraction)}."""
    table = np.array(list(VARIANT_ACCURACY.values()))
    return {kind: float(np.mean(table[:, i + 1] - table[:, 0]) / 100) for i, kind in enumerate(VARIANTS)}


VARIANT_GAINS = variant_gains()
# Among several runs of a variant, the one nearest the paper's setting (as claims 1 and 2 choose).
VARIANT_DEFAULTS = {"semantic": INTERVENTION_DEFAULT, "activation": INTERVENTION_DEFAULT, "selected": INTERVENTION_DEFAULT,
                    "entmax": REGULARIZATION_DEFAULT}


def claim_variants(steering, correctness, samples, seed):
    number, claim = "16", "The fine-grained variants match or beat the plain intervention by about a point."
    gains = ", ".join(f"{kind} {100 * gain:+.2f}" for kind, gain in VARIANT_GAINS.items())
    paper, source = f"mean gain over Int of six models, points: {gains}", "InfoSteer Tables 6 and 7"
    rule = (ci_rule("the ID accuracy difference variant - intervention (paired bootstrap over seeds and test items)", ">", 0)
            + ", for each variant run, on every task both ran (the intervention run as claim 1 chooses it)")
    intervention = steered_methods(steering)["intervention"]
    variants = {kind: choose_method(steering, kind, VARIANT_DEFAULTS[kind]) for kind in VARIANTS}
    variants = {kind: method for kind, method in variants.items() if method is not None}
    if intervention is None or not variants:
        reason = "no method of kind intervention in this run" if intervention is None else "no variant method in this run"
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: {reason}")
    parts = []
    for kind, method in variants.items():
        tasks = sorted(set(steering.filter(pl.col("method") == method)["task"])
                       & set(steering.filter(pl.col("method") == intervention)["task"]))
        for task in tasks:
            runs, reference = correctness.get((task, method, "test_id")), correctness.get((task, intervention, "test_id"))
            if runs is None or reference is None:
                continue
            estimate = Estimate(*paired_bootstrap(runs, reference, samples, seed))
            parts.append(judge(f"{task}, {method} ({kind}) - {intervention}, ID points", estimate, points, 0, ">", VARIANT_GAINS[kind]))
    if not parts:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no ID predictions of the variant runs (--metrics)")
    return judged(number, claim, paper, source, parts_text(parts), parts, rule)
