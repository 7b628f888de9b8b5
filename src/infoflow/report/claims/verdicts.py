"""The claims' shared core: an estimate with its 95% CI, a claim's parts and row, the verdict rules,
the power of a part and the number formats of the measurements.

Verdicts: a claim is a statement `statistic OP threshold` (for example ID accuracy of the
intervention minus SFT > 0). It is
  reproduced      if the whole 95% CI satisfies it,
  not reproduced  if no point of the CI does,
  inconclusive    if the CI contains the threshold, or there is no CI (one seed);
  underpowered    if the CI contains the threshold and the design's minimal detectable effect (MDE,
                  infoflow.report.stats) exceeds the paper's effect: the run could not have decided;
  not applicable  if a precondition of the claim fails on this run (infoflow.report.claims.preconditions);
  not tested      if the run lacks what the claim needs (a method, a kernel, a file), with the reason.
A claim of several parts (several tasks, methods or comparisons) is reproduced if every part is,
not reproduced if any part is not, not tested if no part could be, underpowered if every part left
open is underpowered, and inconclusive otherwise.
"""

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from infoflow.report import markdown
from infoflow.report.stats import bootstrap_estimate, minimal_detectable_effect

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED = "reproduced", "not reproduced", "inconclusive", "not tested"
UNDERPOWERED, NOT_APPLICABLE = "underpowered", "not applicable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, UNDERPOWERED, NOT_APPLICABLE, NOT_TESTED)
VERDICT_WORDS = (
    "**reproduced**: the whole 95% CI satisfies the claim's rule; **not reproduced**: none of it does; **inconclusive**: "
    "the CI straddles the threshold (or there is no CI); **underpowered**: it straddles it and the run's minimal detectable "
    "effect (MDE: the true difference this design detects with 80% power in a two-sided 5% test, from the CI's own seed "
    "and item variance) exceeds the paper's effect, so the run could not have decided; **not applicable**: a precondition "
    "of the claim fails on this run (named with its value; the verdict of the CI alone beside it); **not tested**: the "
    "run lacks what the claim needs. Each row lists its preconditions: the measured value, the threshold, and whether it "
    "holds.")
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
    """A claims.csv row; `detail` qualifies the verdict (underpowered: the MDE and the paper's effect;
    not applicable: the failed precondition), `mde` is each part's MDE or why it is not defined."""

    number: str
    claim: str
    paper: str
    source: str
    measurement: str
    verdict: str
    rule: str
    mde: str = ""
    preconditions: str = ""
    detail: str = ""
    parts: tuple = ()  # the judged Parts (claims_parts.csv), not a claims.csv column


def verdict_text(claim, emphasis=""):
    """The verdict word (between `emphasis` marks) and its detail in brackets where it has one."""
    word = f"{emphasis}{claim.verdict}{emphasis}"
    return f"{word} ({claim.detail})" if claim.detail else word


NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class Part:
    """One judged statistic of a claim: its label, estimate text and verdict; its MDE in the units of
    `fmt` (nan: no CI, or not defined), the paper's effect (None: the paper gives no figure) and the
    estimate itself (NO_ESTIMATE where a part is built from its text alone)."""

    label: str
    text: str
    verdict: str
    mde: float = math.nan
    paper: float | None = None
    fmt: Callable[[float], str] | None = None
    estimate: Estimate = NO_ESTIMATE

    def numbers(self):
        """{value, low, high, unit, mde, paper} in the part's unit (points: the fractions x 100, to 12
        decimals, so that 0.014 is 1.4 and not 1.4000000000000001); nan where there is no estimate or
        MDE, paper None where the paper gives no figure."""
        scale = SCALES.get(self.fmt, 1)
        ends = {name: round(scale * getattr(self.estimate, name), 12) for name in ("value", "low", "high")}
        paper = None if self.paper is None else round(scale * self.paper, 12)
        return {**ends, "unit": UNITS.get(self.fmt, ""), "mde": round(scale * self.mde, 12), "paper": paper}

    def size(self, x, unit=True):
        """A magnitude (the MDE, |the paper's effect|) in the part's format, without a sign; with its unit."""
        return f"{self.fmt(abs(x)).removeprefix('+')} {UNITS.get(self.fmt, '') if unit else ''}".strip()

    def power_text(self):
        paper = "the paper gives no figure" if self.paper is None else f"paper {self.fmt(self.paper)}"
        if math.isnan(self.mde):
            return f"{self.label}: no CI ({paper})"
        spread = " (every draw the same: no spread to power a test)" if self.mde == 0 else ""
        return f"{self.label}: {self.size(self.mde)}{spread} ({paper})"


def judge(label, estimate, fmt, threshold, op, paper=None, df=None):
    """The Part of `estimate` judged by `statistic op threshold`, with its MDE read off the CI (df: of a
    Student-t CI; None: a bootstrap CI): inconclusive becomes underpowered when the MDE exceeds |paper|."""
    mde = minimal_detectable_effect(estimate.low, estimate.high, df)
    v = verdict(estimate, threshold, op)
    if v == INCONCLUSIVE and paper is not None and mde > abs(paper):
        v = UNDERPOWERED
    return Part(label, estimate.text(fmt), v, mde, paper, fmt, estimate)


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
    """A conjunction: any part not reproduced fails it; a part not tested leaves it open; it is
    underpowered when every part left open (neither reproduced nor not tested) is."""
    verdicts = list(verdicts)
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if all(v == NOT_TESTED for v in verdicts):
        return NOT_TESTED
    return UNDERPOWERED if UNDERPOWERED in verdicts and INCONCLUSIVE not in verdicts else INCONCLUSIVE


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
    """'label: estimate (verdict); ...' for a claim's Parts."""
    return "; ".join(f"{p.label}: {p.text} ({p.verdict})" for p in parts)


def underpowered_detail(parts):
    """'MDE x; paper y' of the one underpowered part, or the ranges over several."""
    weak = [p for p in parts if p.verdict == UNDERPOWERED]
    if len(weak) == 1:
        return f"MDE {weak[0].size(weak[0].mde)}; paper {weak[0].fmt(weak[0].paper)}"
    mdes, papers = sorted(weak, key=lambda p: p.mde), sorted(weak, key=lambda p: abs(p.paper))
    return (f"MDE {mdes[0].size(mdes[0].mde, unit=False)} to {mdes[-1].size(mdes[-1].mde)}; paper "
            f"{papers[0].size(papers[0].paper, unit=False)} to {papers[-1].size(papers[-1].paper)} in size ({len(weak)} parts)")


def judged(number, claim, paper, source, measurement, parts, rule, no_mde=None):
    """The claim whose verdict is the conjunction of its Parts' verdicts, with each part's MDE, or
    `no_mde`: why the MDE is not defined for its statistics."""
    v = all_of(p.verdict for p in parts)
    mde = f"not defined: {no_mde}" if no_mde else "; ".join(p.power_text() for p in parts if p.verdict != NOT_TESTED)
    return Claim(number, claim, paper, source, measurement, v, rule, mde, detail=underpowered_detail(parts) if v == UNDERPOWERED else "",
                 parts=tuple(parts))


def points(x):
    return markdown.points(x, empty=None)


def nats(x):
    return f"{x:+.3f}"


def fraction(x):
    return f"{x:.2f}"


def beta(x):
    return f"{x:+.3g}"


UNITS = {points: "points", nats: "nats"}  # betas and depth fractions have none
SCALES = {points: 100}  # points are shown as percentage points of the fractions estimated


def number(x):
    """A table's number for an Estimate: nan for a missing one (None)."""
    return math.nan if x is None else float(x)


def draws_estimate(draws):
    """Estimate from bootstrap draws: row 0 is the statistic on the data, the rest its draws."""
    return Estimate(*bootstrap_estimate(draws))
