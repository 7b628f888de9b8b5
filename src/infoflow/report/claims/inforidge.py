"""InfoRidge's claims (8-12): the ridge layer's depth, its distance to the best early-exit layer,
the final-layer drop before the final norm, residual scaling and other kernel settings.

Uncertainty: the information curves, early exit and betas are resampled by the two-level bootstrap
of infoflow.report.stats (run seeds, then sampling seeds / fit seeds); statistics of the curves (the
ridge layer, distances, drops) are computed on every bootstrap draw of the curves.
"""

import math
from dataclasses import replace

import numpy as np
import polars as pl

from infoflow.io import DataError
from infoflow.report.claims.verdicts import (NOT_TESTED, Claim, Part, all_of, beta, ci_rule, draws_estimate, fraction, judge, judged, nats,
                                             parts_text, points, verdict)
from infoflow.report.comparison import BASELINE
from infoflow.report.stats import group_mean, two_level_means

RIDGE_BAND = (0.5, 0.9)  # depth fractions of "upper-middle" layers; the paper's ridge is 10/12 = 0.83
LAYER_ROWS = ["final_norm", "layer"]  # a layer row: raw layers 0..L, then layer L after the final norm where extracted
MI_SCHEMA = {"task": pl.String, "method": pl.String, "seed": pl.Int64, "point": pl.Int64, "split": pl.String, "quantity": pl.String,
             "layer": pl.Int64, "final_norm": pl.Boolean, "sample_seed": pl.Int64, "mi": pl.Float64}
KERNEL_SCHEMA = {**MI_SCHEMA, "kernel": pl.String, "sigma": pl.Float64}
EXIT_SCHEMA = {"task": pl.String, "method": pl.String, "seed": pl.Int64, "point": pl.Int64, "split": pl.String, "layer": pl.Int64,
               "final_norm": pl.Boolean, "accuracy": pl.Float64}
PAPER_DROP = 0.2721 - 0.0188  # nats, I(Z;Y) at the ridge (layer 10) minus at layer 12, after the final norm (Table 1)
# Why claims 8, 9 and 12 have no MDE: their statistics are argmax positions or a one-sided gap.
RIDGE_NO_MDE = "the ridge layer is an argmax over whole layers, so its draws take a few discrete values and have no SE to power a test"
EXIT_NO_MDE = ("the distance is in whole layers between two argmaxes, and the ID exit gap (best minus last layer) is bounded at 0; "
               "neither has a normal sampling distribution to read an SE from")
BETA_SCHEMA = {"task": pl.String, "method": pl.String, "run_seed": pl.Int64, "seed": pl.Int64, "fit_split": pl.String,
               "layer": pl.Int64, "beta": pl.Float64}


def sft_last_point(frame, task, method=BASELINE):
    """The rows of `method` (default SFT) on `task` at its last checkpoint."""
    part = frame.filter((pl.col("task") == task) & (pl.col("method") == method))
    return part.filter(pl.col("point") == part["point"].max())


def sft_tasks(mi):
    return sorted(mi.filter(pl.col("method") == BASELINE)["task"].unique().to_list())


def grid(frame, value, inner=None, columns=LAYER_ROWS):
    """([run seeds, inner values, columns] of `value`, run seeds, column keys) from a long table of
    every run seed x inner value (sampling or fit seed; one value without `inner`) x column (the mean
    where a cell has several rows; column keys sorted, tuples for several columns)."""
    index = ["seed"] if inner is None else ["seed", inner]
    by = [columns] if isinstance(columns, str) else list(columns)
    cells = group_mean(frame, [*index, *by], [value])
    rows = cells.select(index).unique().sort(index).rows()
    keys = cells.select(by).unique().sort(by).rows()
    row_at, key_at = {r: i for i, r in enumerate(rows)}, {k: j for j, k in enumerate(keys)}
    table = np.full((len(rows), len(keys)), np.nan)
    for *labels, mean in cells.iter_rows():
        table[row_at[tuple(labels[: len(index)])], key_at[tuple(labels[len(index):])]] = mean
    seeds = sorted(frame["seed"].unique().to_list())
    keys = [k[0] for k in keys] if isinstance(columns, str) else keys
    return table.reshape(len(seeds), -1, table.shape[1]), seeds, keys


def information_grid(mi, task, method=BASELINE):
    """I(Z;Y) of the runs' last checkpoint (default SFT's) on the ID sample: grid() over sampling seeds and layer rows."""
    part = sft_last_point(mi, task, method)
    return grid(part.filter((pl.col("quantity") == "hidden") & (pl.col("split") == "test_id")), "mi", "sample_seed")


def raw_rows(keys):
    """Indices and layer numbers of the raw layer rows (before any final norm)."""
    index = [i for i, (final, _) in enumerate(keys) if not final]
    return index, np.array([keys[i][1] for i in index])


def ridge_layer_draws(mi, task, samples, seed):
    """([samples + 1] ridge layers: argmax over raw layers of the mean I(Z;Y) curve, data then draws; the last layer)."""
    curves, _, keys = information_grid(mi, task)
    index, layers = raw_rows(keys)
    return layers[two_level_means(curves[None], samples, seed)[:, 0, index].argmax(axis=1)], layers.max()


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
        label = f"{task}, ridge layer {ridges[0]} of {last}, depth fraction"
        parts.append(Part(label, estimate.text(fraction), ridge_band_verdict(estimate), fmt=fraction, estimate=estimate))
    return parts


def claim_ridge_depth(mi, samples, seed):
    number, claim = "8", "Predictive information I(Z;Y) is non-monotonic in depth: the ridge layer lies inside, at 0.5-0.9 of depth."
    paper, source = "ridge at layer 10 of 12 (0.83); I(Z;Y) 0.272 there, 0.019 at layer 12 (GPT-2 small)", "InfoRidge Table 1"
    parts = ridge_parts(mi, samples, seed)
    if not parts:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{RIDGE_RULE}. Not tested: no information curves of SFT runs")
    return judged(number, claim, paper, source, parts_text(parts), parts, RIDGE_RULE + "; every task", no_mde=RIDGE_NO_MDE)


def early_exit_draws(mi, early_exit, task, samples, seed):
    """Joint draws [samples + 1, 3, raw layers] of I(Z;Y) (ID) and early-exit accuracy on ID and OOD over
    the same run-seed resamples (exit accuracy repeated over the sampling seeds), and the raw layers."""
    curves, seeds, keys = information_grid(mi, task)
    part = sft_last_point(early_exit, task)
    exits = [grid(part.filter(pl.col("split") == split), "accuracy") for split in ("test_id", "test_ood")]
    if any(s != seeds or k != keys for _, s, k in exits):
        raise DataError(f"{task}: the early-exit and information tables cover different SFT runs or layers")
    grids = np.stack([curves, *(np.broadcast_to(e, curves.shape) for e, _, _ in exits)])
    index, layers = raw_rows(keys)
    return two_level_means(grids, samples, seed)[..., index], layers


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
    tasks = sorted(set(sft_tasks(mi)) & set(early_exit.filter(pl.col("method") == BASELINE)["task"]))
    if not tasks:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no information and early-exit curves of SFT runs")
    parts = []
    for task in tasks:
        draws, layers = early_exit_draws(mi, early_exit, task, samples, seed)
        ridges = layers[draws[:, 0].argmax(axis=1)]
        distance = draws_estimate([nearest_best_distance(r, d[2], layers) for r, d in zip(ridges, draws)])
        if math.isnan(distance.value):
            parts.append(Part(f"{task}, ridge to best OOD exit", "OOD early-exit accuracy is 0 at every layer", NOT_TESTED))
        else:
            parts.append(Part(f"{task}, ridge to best OOD exit, layers", distance.text(lambda x: f"{x:.1f}"), verdict(distance, 1, "<="),
                              estimate=distance))
        if draws[0, 1].max() <= 0:
            parts.append(Part(f"{task}, ID exit peak", "ID early-exit accuracy is 0 at every layer", NOT_TESTED))
        else:
            id_gap = draws_estimate(draws[:, 1].max(axis=1) - draws[:, 1, -1])
            parts.append(Part(f"{task}, best minus last-layer ID exit, points", id_gap.text(points), verdict(id_gap, 0, "<="),
                              fmt=points, estimate=id_gap))
    return judged(number, claim, paper, source, parts_text(parts), parts, rule, no_mde=EXIT_NO_MDE)


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
        draws = two_level_means(curves[None], samples, seed)[:, 0]
        peak = draws[:, index].max(axis=1)
        drop = draws_estimate(peak - draws[:, index[-1]])
        parts.append(judge(f"{task}, drop to the raw last layer, nats", drop, nats, 0, ">", PAPER_DROP))
        if (True, layers.max()) in keys:
            normed = draws_estimate(peak - draws[:, keys.index((True, layers.max()))])
            context.append(f"{task}, drop to the last layer after the final norm: {normed.text(nats)}")
    if not parts:
        return Claim(number, claim, paper, source, "", NOT_TESTED, f"{rule}. Not tested: no information curves of SFT runs")
    measurement = parts_text(parts) + "".join(f"; context (not judged): {c}" for c in context)
    return judged(number, claim, paper, source, measurement, parts, rule)


def claim_residual_scaling(mi, betas, samples, seed):
    number, claim = "11", "Betas fitted on OOD data are lower on the last layer and higher on the ridge layer than betas fitted on ID data."
    paper, source = "OOD-fitted betas lower on the last layers, higher on the middle (ridge) layers", "InfoRidge Sec. 4 (residual scaling), Fig. 4"
    rule = (ci_rule("beta(OOD fit) - beta(ID fit) of the last block (two-level bootstrap over run seeds and fit seeds; SFT)", "<", 0)
            + ", and the same with > 0 for the block whose output is the ridge layer (claim 8's estimate); every task")
    fitted = betas.filter(pl.col("method") == BASELINE).rename({"seed": "fit_seed"}).rename({"run_seed": "seed"})
    tasks = sorted(set(fitted["task"]) & set(sft_tasks(mi)))
    if not tasks:
        return Claim(number, claim, paper, source, "", NOT_TESTED,
                     f"{rule}. Not tested: no residual scaling fits of SFT runs with information curves (inforidge.residual_scaling.methods)")
    parts = []
    for task in tasks:
        part = fitted.filter(pl.col("task") == task)
        (ood, _, blocks), (fit_id, _, _) = (grid(part.filter(pl.col("fit_split") == s), "beta", "fit_seed", columns="layer")
                                            for s in ("ood", "id"))
        draws = two_level_means((ood - fit_id)[None], samples, seed)[:, 0]
        last = draws_estimate(draws[:, -1])
        parts.append(judge(f"{task}, last block {blocks[-1]}", last, beta, 0, "<"))
        ridge = ridge_layer_draws(mi, task, 0, seed)[0][0]
        if ridge in blocks[:-1]:
            at_ridge = draws_estimate(draws[:, blocks.index(ridge)])
            parts.append(judge(f"{task}, ridge block {ridge}", at_ridge, beta, 0, ">"))
        else:
            parts.append(Part(f"{task}, ridge block", f"the ridge is layer {ridge}: no block but the last or none is the ridge's",
                              NOT_TESTED))
    return judged(number, claim, paper, source, parts_text(parts), parts, rule)


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
    parts = [replace(part, label=f"{kernel} sigma {sigma:g}, {part.label}")
             for kernel, sigma, mi in settings for part in ridge_parts(mi, samples, seed)]
    widths = {kernel: len({sigma for k, sigma, _ in settings if k == kernel}) for kernel, _, _ in settings}
    note = "" if any(n > 1 for n in widths.values()) else " (one width per kernel: widths not varied)"
    return judged(number, claim, paper, source, parts_text(parts) + note, parts, rule, no_mde=RIDGE_NO_MDE)

