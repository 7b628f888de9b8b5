"""Multi-token decoding information figures from infoflow.report.multitoken_tables' CSV: a layer x
step heatmap of I(Z; Y), and its curves: I against the decoding step, one line per layer, and the
layer profiles at a few steps, with 95% CIs over sampling seeds (raw layers; the last layer read
after the final norm is marked x in the profiles)."""

import argparse

import numpy as np
import polars as pl

from infoflow.report.figures import plt, save  # figures selects the file-only backend
from infoflow.report.multitoken_tables import SCHEMA, readings, shown_steps


def numbers(frame, column):
    return frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()


def panels(count, columns, width=5.0, height=3.4):
    fig, axes = plt.subplots(count, columns, figsize=(width * columns, height * count), squeeze=False)
    return fig, axes


def heatmap(means, path, dpi):
    parts = readings(means) or [(("(no estimates)", ""), means)]
    fig, axes = panels(1, len(parts))
    for ax, ((task, sets), part) in zip(axes[0], parts):
        raw = part.filter(~pl.col("final_norm"))
        layers, steps = sorted(raw["layer"].unique()), sorted(raw["step"].unique())
        values = np.full((len(layers), len(steps)), np.nan)
        for layer, step, mi in raw.select("layer", "step", "mi").iter_rows():
            values[layers.index(layer), steps.index(step)] = np.nan if mi is None else mi
        image = ax.imshow(values, aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(len(steps)), steps, fontsize=6)
        ax.set_yticks(range(len(layers)), layers)
        ax.set_xlabel("decoding step t")
        ax.set_ylabel("layer (0 = embeddings)")
        ax.set_title(f"I(Z;Y), {task} base model, {sets} sets", fontsize=9)
        fig.colorbar(image, ax=ax, label="nats")
    fig.tight_layout()
    save(fig, path, dpi)


def curves(means, path, dpi):
    """Per task and reading (rows): I against the step per layer (left), layer profiles at a few steps (right)."""
    parts = readings(means) or [(("(no estimates)", ""), means)]
    fig, axes = panels(len(parts), 2)
    for (left, right), ((task, sets), part) in zip(axes, parts):
        raw = part.filter(~pl.col("final_norm"))
        colours = plt.cm.viridis(np.linspace(0, 0.95, max(raw["layer"].n_unique(), 1)))
        for colour, ((layer,), curve) in zip(colours, raw.sort("layer", "step").group_by("layer", maintain_order=True)):
            x = curve["step"].to_numpy()
            left.plot(x, numbers(curve, "mi"), color=colour, lw=1.2, label=f"layer {layer}")
            left.fill_between(x, numbers(curve, "ci95_low"), numbers(curve, "ci95_high"), color=colour, alpha=0.12)
        left.set_xlabel("decoding step t")
        left.set_ylabel("I(Z;Y) (nats)")
        left.set_title(f"{task}, {sets} sets: per layer", fontsize=9)
        left.legend(fontsize=5, ncol=2)
        for step in shown_steps(sorted(raw["step"].unique())):
            profile = raw.filter(pl.col("step") == step).sort("layer")
            x, y = profile["layer"].to_numpy(), numbers(profile, "mi")
            line, = right.plot(x, y, marker="o", ms=3, label=f"step {step}")
            right.fill_between(x, numbers(profile, "ci95_low"), numbers(profile, "ci95_high"), color=line.get_color(), alpha=0.12)
            normed = part.filter(pl.col("final_norm") & (pl.col("step") == step))
            right.scatter(normed["layer"].to_numpy(), numbers(normed, "mi"), marker="x", color=line.get_color())
        right.set_xlabel("layer (0 = embeddings)")
        right.set_ylabel("I(Z;Y) (nats)")
        right.set_title(f"{task}, {sets} sets: layer profiles (x: after final norm)", fontsize=9)
        right.legend(fontsize=6)
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, help="multitoken.csv of infoflow.report.multitoken_tables")
    parser.add_argument("--dpi", type=int, required=True)
    parser.add_argument("--heatmap", required=True)
    parser.add_argument("--curves", required=True)
    args = parser.parse_args()
    means = pl.read_csv(args.table, schema_overrides={k: SCHEMA[k] for k in ("task", "sets", "final_norm")})
    heatmap(means, args.heatmap, args.dpi)
    curves(means, args.curves, args.dpi)


if __name__ == "__main__":
    main()
