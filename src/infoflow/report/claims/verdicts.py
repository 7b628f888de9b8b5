"""The claims' shared core: an estimate with its 95% CI, a claim's row, the verdict rules and the
number formats of the measurements.

Verdicts: a claim is a statement `statistic OP threshold` (for example ID accuracy of the
intervention minus SFT > 0). It is
  reproduced      if the whole 95% CI satisfies it,
  not reproduced  if no point of the CI does,
  inconclusive    if the CI contains the threshold, or there is no CI (one seed);
  not tested      if the run lacks what the claim needs (a method, a kernel, a file), with the reason.
A claim of several parts (several tasks, methods or comparisons) is reproduced if every part is,
not reproduced if any part is not, not tested if no part could be, and inconclusive otherwise.
"""

import math
import operator
from dataclasses import dataclass

from infoflow.report import markdown
from infoflow.report.stats import bootstrap_estimate

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED = "reproduced", "not reproduced", "inconclusive", "not tested"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED)
HOLDS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


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


def judged(number, claim, paper, source, measurement, parts, rule):
    """The claim whose verdict is the conjunction of its parts' verdicts."""
    return Claim(number, claim, paper, source, measurement, all_of(v for *_, v in parts), rule)


def points(x):
    return markdown.points(x, empty=None)


def nats(x):
    return f"{x:+.3f}"


def fraction(x):
    return f"{x:.2f}"


def beta(x):
    return f"{x:+.3g}"


def number(x):
    """A table's number for an Estimate: nan for a missing one (None)."""
    return math.nan if x is None else float(x)


def draws_estimate(draws):
    """Estimate from bootstrap draws: row 0 is the statistic on the data, the rest its draws."""
    return Estimate(*bootstrap_estimate(draws))
