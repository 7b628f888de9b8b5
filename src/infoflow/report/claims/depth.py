"""InfoRidge's depth threshold (claim 14): the ridge appears only in models beyond some depth.

Each depth's part is the drop from its inner peak to its last layer (infoflow.report.depth_tables):
a CI above 0 says the model has a ridge, below 0 that it has none. The claim is about the pattern
over depths, so its verdict is read off the parts' verdicts in depth order, not their conjunction.
"""

from infoflow.report.claims.inforidge import PAPER_DROP
from infoflow.report.claims.verdicts import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, UNDERPOWERED, Claim, draws_estimate,
                                             judge, nats, parts_text, underpowered_detail)
from infoflow.report.depth_tables import depths_of

NUMBER = "14"
CLAIM = "The ridge appears only beyond a depth threshold: shallower models have none, deeper ones have one."
PAPER = "the ridge appears only beyond a depth threshold, which the paper does not give (depths not given in the main text)"
SOURCE = "InfoRidge, controlled model capacity (Sec. 4)"
RULE = ("per depth, a ridge is present if the 95% CI of the drop from the inner peak (the highest mean I(Z;Y) over layers "
        "1..L-1) to the last raw layer is > 0, absent if it is < 0, undecided otherwise (two-level bootstrap over run and "
        "sampling seeds; SFT from each depth's base model, last checkpoint, ID sample); reproduced if every depth is "
        "decided, at least one has no ridge and one has one, and every depth with a ridge is deeper than every depth "
        "without; not reproduced if a deeper model lacks a ridge that a shallower one has, or no depth has one; "
        "inconclusive otherwise (an undecided depth, or a ridge at every depth: the threshold then lies below the "
        "shallowest depth run); underpowered where the undecided depths' MDEs exceed the paper's drop")


def pattern_verdict(verdicts):
    """The claim's verdict from its parts' verdicts in ascending depth (REPRODUCED: a ridge)."""
    has = [v == REPRODUCED for v in verdicts]
    lacks = [v == NOT_REPRODUCED for v in verdicts]
    if any(has[i] and lacks[j] for i in range(len(verdicts)) for j in range(i + 1, len(verdicts))):
        return NOT_REPRODUCED
    undecided = [v for v, h, n in zip(verdicts, has, lacks) if not (h or n)]
    if not undecided:
        return NOT_REPRODUCED if not any(has) else INCONCLUSIVE if all(has) else REPRODUCED
    return UNDERPOWERED if all(v == UNDERPOWERED for v in undecided) else INCONCLUSIVE


def claim_depth_threshold(mi, task, methods, samples, seed):
    """Claim 14 from the information curves `mi` of the depth analysis's `methods` on `task`."""
    parts = []
    for _, _, layers, peaks, drops in depths_of(mi, task, methods, samples, seed):
        label = f"{task}, {layers.max()} layers: inner peak at layer {layers[peaks[0]]}, drop to the last layer, nats"
        parts.append((layers.max(), judge(label, draws_estimate(drops), nats, 0, ">", PAPER_DROP)))
    if len({depth for depth, _ in parts}) < 2:
        return Claim(NUMBER, CLAIM, PAPER, SOURCE, parts_text([p for _, p in parts]), NOT_TESTED,
                     f"{RULE}. Not tested: information curves of fewer than 2 depths (inforidge.depths)")
    parts = [p for _, p in sorted(parts, key=lambda pair: pair[0])]
    verdict = pattern_verdict([p.verdict for p in parts])
    mde = "; ".join(p.power_text() for p in parts)
    return Claim(NUMBER, CLAIM, PAPER, SOURCE, parts_text(parts), verdict, RULE, mde,
                 detail=underpowered_detail([p for p in parts if p.verdict == UNDERPOWERED]) if verdict == UNDERPOWERED else "",
                 parts=tuple(parts))
