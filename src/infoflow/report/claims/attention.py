"""InfoRidge's claim 13: attention to signal tokens peaks in the middle-to-late layers and collapses in
the final layer (Table 2).

Uncertainty: the per-layer mean curves of attention mass (SFT runs, last checkpoint, ID sample) are
resampled by the two-level bootstrap over run seeds, then examples (infoflow.report.attention_tables);
the peak layer and the drop are computed on every draw of the curves.
"""

from dataclasses import replace

import polars as pl

from infoflow.report.attention_tables import mass_draws
from infoflow.report.claims.inforidge import RIDGE_BAND, RIDGE_NO_MDE, ridge_band_verdict, ridge_layer_draws, sft_tasks
from infoflow.report.claims.verdicts import NOT_TESTED, Claim, Part, ci_rule, draws_estimate, fraction, judge, judged, parts_text
from infoflow.report.comparison import BASELINE
from infoflow.world.modular_tokens import MASS_KINDS

PAPER_DROP = 0.2307 - 0.0104  # signal mass at layer 17 minus at the final layer 24 (Qwen-2.5 0.5B, ECQA; Table 2)
RULE = (f"(a) reproduced if the 95% CI of the signal peak's depth fraction (argmax over layers 1..L of the mean attention mass "
        f"from the prediction position to the signal tokens, over heads, run seeds and examples, divided by L; SFT, last "
        f"checkpoint, ID sample; two-level bootstrap over run seeds and examples) lies within [{RIDGE_BAND[0]}, {RIDGE_BAND[1]}], "
        f"not reproduced if it lies entirely outside, inconclusive otherwise; (b) "
        + ci_rule("the signal mass at the peak layer (of the data's curve) minus at the last layer (the same draws)", ">", 0) + "; every task")


def signed_mass(x):
    return f"{x:+.3f}"


def mass(x):
    return f"{x:.3f}"


def sft_id_masses(attention):
    return attention.filter((pl.col("method") == BASELINE) & (pl.col("split") == "test_id"))


def claim_attention(attention, mi, samples, seed):
    """`attention`: the runs' masses (infoflow.inforidge.attention rows); `mi`: their information curves
    (for the ridge layer shown beside the claim, not judged)."""
    number, claim = "13", "Attention to signal tokens peaks in the middle-to-late layers and collapses in the final layer."
    paper = ("signal mass 0.2307 at layer 17, 0.0104 at the final layer 24, where the last token takes 0.2169 "
             "(Qwen-2.5 0.5B, ECQA)")
    source = "InfoRidge Table 2"
    sft = sft_id_masses(attention)
    tasks = sorted(sft["task"].unique().to_list())
    if not tasks:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{RULE}. Not tested: no attention masses of SFT runs on the ID sample")
    parts, context = [], []
    for task in tasks:
        draws, _, layers = mass_draws(sft.filter(pl.col("task") == task), samples, seed)
        signal, depth = draws[:, MASS_KINDS.index("signal")], layers.max()
        peaks = layers[signal.argmax(axis=1)]
        peak = draws_estimate(peaks / depth)
        parts.append(Part(f"{task}, signal peak at layer {peaks[0]} of {depth}, depth fraction", peak.text(fraction),
                          ridge_band_verdict(peak), fmt=fraction, estimate=peak))
        # At the data's peak layer in every draw: the maximum of each draw would make the drop >= 0 by
        # construction, so that a flat curve passed; at a fixed layer its CI is centred near 0.
        drop = draws_estimate(signal[:, signal[0].argmax()] - signal[:, -1])
        parts.append(judge(f"{task}, signal mass at the peak minus at the last layer", drop, signed_mass, 0, ">", PAPER_DROP))
        last_token = draws_estimate(draws[:, MASS_KINDS.index("last"), -1])
        context.append(f"{task}, last-token mass at the last layer: {last_token.text(mass)}")
        if task in sft_tasks(mi):
            context.append(f"{task}, SFT ridge layer of I(Z;Y) (claim 8): {ridge_layer_draws(mi, task, 0, seed)[0][0]} of {depth}")
    measurement = parts_text(parts) + "".join(f"; context (not judged): {c}" for c in context)
    result = judged(number, claim, paper, source, measurement, parts, RULE)
    # The peak's depth fraction is an argmax, as claim 8's ridge layer: only the drop has an MDE.
    mde = f"peak depth fractions: not defined: {RIDGE_NO_MDE}; " + "; ".join(p.power_text() for p in parts if p.fmt is signed_mass)
    return replace(result, mde=mde)
