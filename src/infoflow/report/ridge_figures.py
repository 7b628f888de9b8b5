"""InfoRidge figures from infoflow.report.ridge_tables' CSVs: the information heatmap over layers x
fine-tuning steps, information curves with bands, incremental gain, early exit and the betas."""

import argparse

import numpy as np
import polars as pl

from infoflow.report.figures import SPLIT_LABELS, plt, save  # figures selects the file-only backend


def grid(tasks, columns, width=4.2, height=3.2):
    fig, axes = plt.subplots(len(tasks), len(columns), figsize=(width * len(columns), height * len(tasks)), squeeze=False)
    return fig, axes


def final_rows(layers):
    return layers.filter(pl.col("point") == pl.col("point").max().over("task", "method"))


def numbers(frame, column):
    return frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()


def curves(layers, value, band, ylabel, path, dpi):
    """Per task (rows) and split (columns): one line per method over layers, with its band."""
    tasks = sorted(layers["task"].unique())
    fig, axes = grid(tasks, list(SPLIT_LABELS))
    for row, task in zip(axes, tasks):
        for ax, (split, label) in zip(row, SPLIT_LABELS.items()):
            part = final_rows(layers).filter((pl.col("task") == task) & (pl.col("split") == split))
            for (method,), curve in part.filter(~pl.col("final_norm")).group_by("method", maintain_order=True):
                curve = curve.sort("layer")
                x, y = curve["layer"].to_numpy(), numbers(curve, value)
                line, = ax.plot(x, y, marker="o", ms=3, lw=2.2 if method == "sft" else 1, label=method)
                if band is not None and method == "sft":  # one band keeps the panel readable
                    ax.fill_between(x, y - numbers(curve, band), y + numbers(curve, band), color=line.get_color(), alpha=0.12)
                normed = part.filter((pl.col("method") == method) & pl.col("final_norm"))
                ax.scatter(normed["layer"].to_numpy(), numbers(normed, value), marker="x", color=line.get_color())
            ax.set_title(f"{task}, {label} (x: last layer after final norm)", fontsize=9)
            ax.set_xlabel("layer (0 = embeddings)")
            ax.set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    save(fig, path, dpi)


def heatmap(layers, path, dpi):
    """I(Z;Y) of the SFT runs on the ID sample over layers (rows) and checkpoints (columns)."""
    part = layers.filter((pl.col("method") == "sft") & (pl.col("split") == "test_id") & ~pl.col("final_norm"))
    tasks = sorted(part["task"].unique())
    fig, axes = grid(["heatmap"], tasks, width=5, height=3.6)
    for ax, task in zip(axes[0], tasks):
        cells = part.filter(pl.col("task") == task).group_by("layer", "step").agg(pl.col("mi_hidden").mean())
        rows, steps = sorted(cells["layer"].unique()), sorted(cells["step"].unique())
        values = np.full((len(rows), len(steps)), np.nan)
        for layer, step, mi in cells.iter_rows():
            values[rows.index(layer), steps.index(step)] = np.nan if mi is None else mi
        image = ax.imshow(values, aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(len(steps)), steps, fontsize=7, rotation=45)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("layer")
        ax.set_title(f"I(Z;Y), {task}, SFT, ID", fontsize=9)
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    save(fig, path, dpi)


def beta_figure(betas, path, dpi):
    tasks = sorted(betas["task"].unique()) or ["(no fitted runs)"]
    fig, axes = grid(["betas"], tasks)
    for ax, task in zip(axes[0], tasks):
        for (method, fit_split), curve in betas.filter(pl.col("task") == task).sort("method", "fit_split").group_by(
                "method", "fit_split", maintain_order=True):
            curve = curve.sort("layer")
            x, mean, sd = curve["layer"].to_numpy(), numbers(curve, "beta_mean"), numbers(curve, "beta_sd")
            line, = ax.plot(x, mean, marker="o", label=f"{method}, fitted on {fit_split.upper()}")
            ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("block")
        ax.set_ylabel("beta (mean ± 1 sd)")
        ax.set_title(f"residual scaling, {task}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path, dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for flag in ("--layers", "--residual-scaling", "--heatmap", "--curves", "--gain", "--early-exit", "--betas"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--dpi", type=int, required=True)
    args = parser.parse_args()
    layers = pl.read_csv(args.layers, schema_overrides={"task": pl.String, "method": pl.String, "split": pl.String})
    heatmap(layers, args.heatmap, args.dpi)
    curves(layers, "mi_hidden", "mi_hidden_band", "I(Z;Y) (nats)", args.curves, args.dpi)
    curves(layers, "mi_residual", "mi_residual_band", "I(ΔZ;Y) (nats)", args.gain, args.dpi)
    curves(layers, "early_exit", None, "early-exit accuracy", args.early_exit, args.dpi)
    beta_figure(pl.read_csv(args.residual_scaling, schema_overrides={"task": pl.String, "method": pl.String, "fit_split": pl.String}),
                args.betas, args.dpi)


if __name__ == "__main__":
    main()
