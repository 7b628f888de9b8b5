"""InfoRidge's multi-token claim (15): over the decoding steps of a base model's continuations, the
information I(Z_t; Y) rises in level while its layer profile keeps its shape.

Uncertainty: the bootstrap over sampling seeds of infoflow.report.multitoken_tables (the curves' CI);
both statistics are computed on every draw of the step x layer means, over the raw block outputs
1..L. The embedding layer 0 is left out: at the position that predicts token t it holds token t-1's
embedding, so its prefix set shares t-1 of its t tokens with Y's and its I rises with t by construction.
"""

import numpy as np
import polars as pl

from infoflow.report.claims.verdicts import NOT_TESTED, Claim, ci_rule, draws_estimate, fraction, judge, judged, nats, parts_text
from infoflow.report.multitoken_tables import readings, seed_draws

SHAPE_THRESHOLD = 0.5
RULE = (ci_rule("the mean over the raw block outputs 1..L of I(Z_t;Y) at the last decoding step T with an estimate minus at step 1 (bootstrap over "
                "sampling seeds; the embedding layer 0 left out, as its prefix set shares tokens with Y's)", ">", 0)
        + f"; and the same for the Pearson correlation of the layer profiles at step 1 and at step T, > {SHAPE_THRESHOLD}: our threshold "
        "(the paper gives none), above which the two profiles have most of their shape in common; every base model and sets reading")


def profile_draws(rows, samples, seed):
    """(draws [samples + 1, steps, raw layers] of the mean I over sampling seeds, the steps) of one task and reading."""
    raw = rows.filter(~pl.col("final_norm"))
    draws, cells = seed_draws(raw, samples, seed)
    steps = sorted(cells["step"].unique())
    return draws.reshape(len(draws), len(steps), -1), steps


def correlations(first, last):
    """Pearson correlation of the rows of first and last [draws, layers]; nan for a flat row."""
    a, b = first - first.mean(-1, keepdims=True), last - last.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / np.sqrt((a**2).sum(-1) * (b**2).sum(-1))


def claim_multitoken(information, samples, seed):
    """`information`: the rows of infoflow.inforidge.multitoken's CSVs (multitoken_tables.read_information)."""
    number = "15"
    claim = "I(Z_t;Y) rises in level with the decoding step t while the layer profile keeps its shape (peak, then late decline)."
    paper, source = "rises with t over 50 steps, same layer profile (Qwen-2.5 0.5B, Llama 3.1 8B, pretrained, CNN/DailyMail)", "InfoRidge Sec. 5"
    parts = []
    for (task, sets), rows in readings(information):
        draws, steps = profile_draws(rows, samples, seed)
        if len(steps) < 2:
            continue
        # T: the last step with an estimate on every draw (with `step` sets, one a continuation still reaches)
        measured = [i for i in range(len(steps)) if np.isfinite(draws[:, i, 1:]).all()]
        if len(measured) < 2:
            continue
        first, last = draws[:, measured[0], 1:], draws[:, measured[-1], 1:]  # block outputs 1..L
        where = f"{task} base model, {sets} sets, step {steps[measured[-1]]} vs {steps[measured[0]]}"
        parts.append(judge(f"{where}: rise of the mean over layers", draws_estimate(last.mean(-1) - first.mean(-1)), nats, 0, ">"))
        parts.append(judge(f"{where}: profile correlation", draws_estimate(correlations(first, last)), fraction, SHAPE_THRESHOLD, ">"))
    if not parts:
        return Claim(number, claim, paper, source, "", NOT_TESTED,
                     f"{RULE}. Not tested: no multi-token information of two or more decoding steps (multitoken stage)")
    return judged(number, claim, paper, source, parts_text(parts), parts, RULE)
