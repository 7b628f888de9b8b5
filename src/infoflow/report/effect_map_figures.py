"""The effect map (results/<sweep>/effect_map.png) from its table (infoflow.report.effect_map): one
panel per claim, the sweep's points along x; each part of the claim is a marker of its own shape at
its estimate with its 95% CI, coloured by its verdict, beside the paper's effect where the paper gives
one. A point where the claim's preconditions fail (not applicable) is shaded and its markers hollow;
a part with a verdict but no estimate is marked on the panel's floor; a claim not tested at a point
says so there.

    python -m infoflow.report.effect_map_figures --table results/<sweep>/effect_map.csv --out results/<sweep>/effect_map.png
"""

import argparse
import math
import re
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes or CI
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from infoflow.report import effect_map
from infoflow.report.claims.verdicts import INCONCLUSIVE, NOT_APPLICABLE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, UNDERPOWERED
from infoflow.report.figures import save

COLOURS = {REPRODUCED: "#1a9850", NOT_REPRODUCED: "#d73027", INCONCLUSIVE: "#7f7f7f", UNDERPOWERED: "#f39c12", NOT_TESTED: "#bdbdbd"}
MARKERS = "osD^vP*X"
SHADE = "0.9"  # the background of a point whose preconditions fail
COLUMNS = 4  # panels per row


def common_label(labels):
    """The words a part's labels share at every point, without the figures in brackets ('(87.0% ->
    88.1%)') and with '…' for a word that differs ('ridge layer 6 of …')."""
    words = [re.sub(r"\s*\([^)]*\)", "", label).split(" ") for label in labels]
    if len({len(w) for w in words}) > 1:
        return " ".join(words[0])
    return " ".join(same[0] if len(set(same)) == 1 else "…" for same in zip(*words))


def panel(ax, rows, points):
    """One claim across the points: its parts' estimates, CIs and verdicts, the paper's effects."""
    parts = int(rows["part_index"].max() or 0) + 1  # (max is None where the claim has no parts at any point)
    width = min(0.25, 0.8 / parts)
    floor = ax.get_xaxis_transform()  # x in data, y in axes units
    labels = {j: common_label(part["part"].to_list()) for (j,), part in rows.drop_nulls("part_index").group_by("part_index")}
    for x, point in enumerate(points):
        at = rows.filter(pl.col("point") == point)
        claim_verdict = at["claim_verdict"][0]
        if claim_verdict == NOT_APPLICABLE:
            ax.axvspan(x - 0.5, x + 0.5, color=SHADE, zorder=0)
        if at["part"].is_null().all():
            ax.text(x, 0.5, claim_verdict, transform=floor, rotation=90, ha="center", va="center", fontsize=7, color="0.4")
            continue
        for row in at.iter_rows(named=True):
            j = row["part_index"]
            px, style = x + (j - (parts - 1) / 2) * width, MARKERS[j % len(MARKERS)]
            colour = COLOURS.get(row["verdict"], "black")
            face = "none" if claim_verdict == NOT_APPLICABLE else colour
            value, low, high = (row[k] if row[k] is not None else math.nan for k in ("value", "low", "high"))
            if math.isnan(value):
                ax.plot(px, 0.03, style, transform=floor, color=colour, mfc=face, ms=5, clip_on=False)
                continue
            error = np.nan_to_num([[value - low], [high - value]])
            ax.errorbar(px, value, yerr=error, fmt=style, color=colour, mfc=face, ms=5, capsize=2, lw=1)
            if row["paper"] is not None:
                ax.plot(px, row["paper"], "_", color="black", ms=9, mew=1.5)
    ax.axhline(0, color="0.5", lw=0.8, ls="--", zorder=0)
    ax.set_xlim(-0.5, len(points) - 0.5)
    ax.set_xticks(range(len(points)), points, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel(", ".join(u for u in rows["unit"].drop_nulls().unique(maintain_order=True)) or "estimate", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if labels:
        handles = [Line2D([], [], marker=MARKERS[j % len(MARKERS)], color="0.3", ls="") for j in sorted(labels)]
        ax.legend(handles, [textwrap.shorten(labels[j], 60) for j in sorted(labels)], fontsize=5.5, loc="best", framealpha=0.7)


def effect_map_figure(table, path, dpi):
    """Every claim of the table in a panel of its own, COLUMNS panels a row."""
    points = table["point"].unique(maintain_order=True).to_list()
    claims = table["number"].unique(maintain_order=True).to_list()
    rows_of_panels = math.ceil(len(claims) / COLUMNS)
    width = max(3.4, 0.5 * len(points) + 1.6)
    fig, axes = plt.subplots(rows_of_panels, COLUMNS, figsize=(COLUMNS * width, 3.6 * rows_of_panels + 0.8), squeeze=False)
    for ax, number in zip(axes.flat, claims):
        rows = table.filter(pl.col("number") == number)
        panel(ax, rows, points)
        ax.set_title("\n".join(textwrap.wrap(f"{number}. {rows['claim'][0]}", 48)[:3]), fontsize=7.5)
    for ax in axes.flat[len(claims):]:
        ax.set_visible(False)
    legend = [Line2D([], [], marker="o", color=colour, ls="", label=verdict) for verdict, colour in COLOURS.items()]
    legend += [Patch(color=SHADE, label="preconditions fail (not applicable): hollow markers"),
               Line2D([], [], marker="_", color="black", ls="", ms=9, mew=1.5, label="the paper's effect"),
               Line2D([], [], marker="o", color="0.3", ls="", label="on the floor: a verdict without an estimate")]
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.8 / (3.6 * rows_of_panels + 0.8), 1, 1))
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="effect_map.csv (infoflow.report.effect_map)")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    effect_map_figure(effect_map.read(args.table), args.out, args.dpi)


if __name__ == "__main__":
    main()
