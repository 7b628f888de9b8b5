"""InfoRidge tables and figures over all runs (reads the per-run CSVs of infoflow.ridge and
infoflow.residual_scaling).

  tables:  ridge_layers.csv  per task, method, checkpoint, split and layer: I(Z;Y), I(dZ;Y) (mean
                             and 2-sigma band over run seeds x sampling seeds), early-exit and
                             linear-probe accuracy (mean over run seeds);
           ridge.csv         the ridge layer (argmax of the mean I(Z;Y) over raw layers) per task,
                             method, checkpoint and split, for the seed mean and each run seed;
           residual_scaling.csv  beta per layer fitted on ID vs OOD (mean, sd over all fits);
           ridge.md          Table 1 of the paper for each task's SFT runs, the ridge layers, betas.
  figures: heatmap over layers x steps, curves with bands, incremental gain, early exit, betas.
"""

import argparse
import json

import pandas as pd

from infoflow.figures import SPLIT_LABELS, plt, save  # figures selects the file-only backend
from infoflow.io import write_csv, write_text
from infoflow.tables import markdown

KEYS = ["task", "method", "point", "split", "layer", "final_norm"]


def read_all(paths, columns=None):
    """The CSV files as one table; without files an empty table of `columns` (the claims check
    reads runs that a config may not have)."""
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True) if paths else pd.DataFrame(columns=columns)


def layer_table(mi, early_exit, probes):
    """One row per task, method, checkpoint, split and layer row (see module docstring)."""
    stats = mi.groupby([*KEYS, "quantity"]).mi.agg(["mean", "std", "size"]).reset_index()
    wide = stats.pivot_table(index=KEYS, columns="quantity", values=["mean", "std"]).reset_index()
    wide.columns = [f"mi_{q}{'' if s == 'mean' else '_sd'}" if q else s for s, q in wide.columns]
    for quantity in ("hidden", "residual"):
        wide[f"mi_{quantity}_band"] = 2 * wide.pop(f"mi_{quantity}_sd")
    steps = mi.groupby(["task", "method", "point"]).step.max().rename("step")
    exits = early_exit.groupby(KEYS).accuracy.mean().rename("early_exit")
    probe = probes.groupby(KEYS).accuracy.mean().rename("probe")
    table = wide.join(exits, on=KEYS).join(probe, on=KEYS).join(steps, on=["task", "method", "point"])
    return table.sort_values(KEYS).reset_index(drop=True)


def ridge_layers(mi):
    """The argmax layer of I(Z;Y) over raw layers, for the mean over run seeds and for each seed."""
    hidden = mi[(mi.quantity == "hidden") & ~mi.final_norm]
    per_seed = hidden.groupby(["task", "method", "seed", "point", "split", "layer"]).mi.mean().reset_index()
    pooled = per_seed.groupby(["task", "method", "point", "split", "layer"]).mi.mean().reset_index().assign(seed="mean")
    rows = []
    for keys, curve in pd.concat([pooled, per_seed.astype({"seed": str})]).groupby(["task", "method", "seed", "point", "split"]):
        curve = curve.sort_values("layer")
        peak = curve.loc[curve.mi.idxmax()]
        depth = int(curve.layer.max())
        rows.append({**dict(zip(["task", "method", "seed", "point", "split"], keys)), "ridge_layer": int(peak.layer),
                     "layers": depth, "depth_fraction": peak.layer / depth, "peak_mi": peak.mi, "last_layer_mi": curve.mi.iloc[-1]})
    return pd.DataFrame(rows)


def beta_table(betas):
    table = betas.groupby(["task", "method", "fit_split", "layer"]).beta.agg(["mean", "std", "size"]).reset_index()
    return table.rename(columns={"mean": "beta_mean", "std": "beta_sd", "size": "fits"})


def accuracy_change(summaries):
    """Held-out answer accuracy before and after fitting, per task, method and fit split (mean over fits)."""
    rows = []
    for path in summaries:
        with open(path) as f:
            summary = json.load(f)
        for fit in summary["fits"]:
            for split in ("id", "ood"):
                rows.append({"task": summary["tags"]["task"], "method": summary["tags"]["method"], "fit_split": fit["fit_split"],
                             "measured_on": split, "before": fit["accuracy_before"][split], "after": fit["accuracy_after"][split]})
    frame = pd.DataFrame(rows)
    return frame.groupby(["task", "method", "fit_split", "measured_on"])[["before", "after"]].mean().reset_index()


def fmt(value, band=None, digits=4):
    if pd.isna(value):
        return ""
    return f"{value:.{digits}f}" if band is None or pd.isna(band) else f"{value:.{digits}f} ± {band:.{digits}f}"


def percent(value):
    return "" if pd.isna(value) else f"{100 * value:.1f}"


def table1(layers, task):
    """The paper's Table 1 for one task's SFT runs at the last checkpoint."""
    last = layers[(layers.task == task) & (layers.method == "sft")]
    last = last[last.point == last.point.max()]
    id_rows, ood_rows = (last[last.split == s].set_index(["layer", "final_norm"]) for s in ("test_id", "test_ood"))
    rows = []
    for (layer, final), row in id_rows.iterrows():
        ood = ood_rows.loc[(layer, final)]
        rows.append({
            "layer": f"{layer} (after final norm)" if final else str(layer),
            "I(Z;Y) ID ± 2σ": fmt(row.mi_hidden, row.mi_hidden_band),
            "I(ΔZ;Y) ID": fmt(row.mi_residual),
            "I(Z;Y) OOD": fmt(ood.mi_hidden),
            "early exit all (%)": percent((row.early_exit + ood.early_exit) / 2),
            "early exit ID (%)": percent(row.early_exit),
            "early exit OOD (%)": percent(ood.early_exit),
            "probe ID (%)": percent(row.probe),
            "probe OOD (%)": percent(ood.probe),
        })
    return pd.DataFrame(rows)


def report_markdown(layers, ridge, betas, accuracy):
    parts = []
    for task in sorted(layers.task.unique()):
        if (layers.task == task).any() and "sft" in set(layers[layers.task == task].method):
            parts.append(markdown(table1(layers, task), f"Information per layer, {task} task, SFT, last checkpoint (paper Table 1)"))
    final = ridge[(ridge.seed == "mean")]
    final = final[final.point == final.groupby(["task", "method"]).point.transform("max")]
    per_seed = ridge[(ridge.seed != "mean")]
    per_seed = per_seed[per_seed.point == per_seed.groupby(["task", "method"]).point.transform("max")]
    seeds_text = per_seed.groupby(["task", "method", "split"]).ridge_layer.apply(lambda s: " ".join(map(str, s))).rename("per seed")
    summary = final.join(seeds_text, on=["task", "method", "split"])
    summary = summary.assign(split=summary.split.map(SPLIT_LABELS), depth_fraction=summary.depth_fraction.round(2),
                             peak_mi=summary.peak_mi.map(fmt), last_layer_mi=summary.last_layer_mi.map(fmt))
    parts.append(markdown(summary[["task", "method", "split", "ridge_layer", "layers", "depth_fraction", "per seed", "peak_mi", "last_layer_mi"]],
                          "Ridge layer at the last checkpoint (argmax of mean I(Z;Y) over raw layers)"))
    over_training = ridge[(ridge.seed == "mean") & (ridge.method == "sft") & (ridge.split == "test_id")]
    parts.append(markdown(over_training[["task", "point", "ridge_layer", "peak_mi", "last_layer_mi"]].assign(
        peak_mi=over_training.peak_mi.map(fmt), last_layer_mi=over_training.last_layer_mi.map(fmt)),
        "Ridge layer over fine-tuning (SFT, ID; point 0 is the base model)"))
    if len(betas):
        wide = betas.pivot_table(index=["task", "method", "layer"], columns="fit_split", values="beta_mean").reset_index()
        wide = wide.rename(columns={"id": "beta fitted on ID", "ood": "beta fitted on OOD"}).round(3)
        parts.append(markdown(wide, "Residual scaling coefficients per block (mean over run seeds x fit seeds)"))
        parts.append(markdown(accuracy.assign(before=accuracy.before.map(percent), after=accuracy.after.map(percent)),
                              "Held-out answer accuracy (%) before and after fitting the betas"))
    return "\n".join(parts)


def tables(args):
    mi = read_all(args.mi)
    layers = layer_table(mi, read_all(args.early_exit), read_all(args.probes))
    ridge = ridge_layers(mi)
    betas = beta_table(read_all(args.betas)) if args.betas else pd.DataFrame(columns=["task", "method", "fit_split", "layer", "beta_mean", "beta_sd", "fits"])
    accuracy = accuracy_change(args.summaries) if args.summaries else pd.DataFrame()
    write_csv(args.layers, layers)
    write_csv(args.ridge, ridge)
    write_csv(args.residual_scaling, betas)
    write_text(args.markdown, report_markdown(layers, ridge, betas, accuracy))


def grid(tasks, columns, width=4.2, height=3.2):
    fig, axes = plt.subplots(len(tasks), len(columns), figsize=(width * len(columns), height * len(tasks)), squeeze=False)
    return fig, axes


def final_rows(layers):
    return layers[layers.point == layers.groupby(["task", "method"]).point.transform("max")]


def curves(layers, value, band, ylabel, path, dpi):
    """Per task (rows) and split (columns): one line per method over layers, with its band."""
    tasks = sorted(layers.task.unique())
    fig, axes = grid(tasks, list(SPLIT_LABELS))
    for row, task in zip(axes, tasks):
        for ax, (split, label) in zip(row, SPLIT_LABELS.items()):
            part = final_rows(layers)
            part = part[(part.task == task) & (part.split == split)]
            for method, curve in part[~part.final_norm].groupby("method", sort=False):
                curve = curve.sort_values("layer")
                line, = ax.plot(curve.layer, curve[value], marker="o", ms=3, lw=2.2 if method == "sft" else 1, label=method)
                if band is not None and method == "sft":  # one band keeps the panel readable
                    ax.fill_between(curve.layer, curve[value] - curve[band], curve[value] + curve[band], color=line.get_color(), alpha=0.12)
                normed = part[(part.method == method) & part.final_norm]
                ax.scatter(normed.layer, normed[value], marker="x", color=line.get_color())
            ax.set_title(f"{task}, {label} (x: last layer after final norm)", fontsize=9)
            ax.set_xlabel("layer (0 = embeddings)")
            ax.set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    save(fig, path, dpi)


def heatmap(layers, path, dpi):
    """I(Z;Y) of the SFT runs on the ID sample over layers (rows) and checkpoints (columns)."""
    part = layers[(layers.method == "sft") & (layers.split == "test_id") & ~layers.final_norm]
    tasks = sorted(part.task.unique())
    fig, axes = grid(["heatmap"], tasks, width=5, height=3.6)
    for ax, task in zip(axes[0], tasks):
        table = part[part.task == task].pivot_table(index="layer", columns="step", values="mi_hidden")
        image = ax.imshow(table.to_numpy(), aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(len(table.columns)), table.columns, fontsize=7, rotation=45)
        ax.set_yticks(range(len(table.index)), table.index)
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("layer")
        ax.set_title(f"I(Z;Y), {task}, SFT, ID", fontsize=9)
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    save(fig, path, dpi)


def beta_figure(betas, path, dpi):
    tasks = sorted(betas.task.unique()) or ["(no fitted runs)"]
    fig, axes = grid(["betas"], tasks)
    for ax, task in zip(axes[0], tasks):
        for (method, fit_split), curve in betas[betas.task == task].groupby(["method", "fit_split"]):
            curve = curve.sort_values("layer")
            line, = ax.plot(curve.layer, curve.beta_mean, marker="o", label=f"{method}, fitted on {fit_split.upper()}")
            ax.fill_between(curve.layer, curve.beta_mean - curve.beta_sd, curve.beta_mean + curve.beta_sd, color=line.get_color(), alpha=0.15)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("block")
        ax.set_ylabel("beta (mean ± 1 sd)")
        ax.set_title(f"residual scaling, {task}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path, dpi)


def figures(args):
    layers = pd.read_csv(args.layers)
    heatmap(layers, args.heatmap, args.dpi)
    curves(layers, "mi_hidden", "mi_hidden_band", "I(Z;Y) (nats)", args.curves, args.dpi)
    curves(layers, "mi_residual", "mi_residual_band", "I(ΔZ;Y) (nats)", args.gain, args.dpi)
    curves(layers, "early_exit", None, "early-exit accuracy", args.early_exit, args.dpi)
    beta_figure(pd.read_csv(args.residual_scaling), args.betas, args.dpi)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    table_args = commands.add_parser("tables")
    for flag in ("--mi", "--early-exit", "--probes"):
        table_args.add_argument(flag, nargs="+", required=True)
    for flag in ("--betas", "--summaries"):
        table_args.add_argument(flag, nargs="*", default=[])
    for flag in ("--layers", "--ridge", "--residual-scaling", "--markdown"):
        table_args.add_argument(flag, required=True)
    figure_args = commands.add_parser("figures")
    for flag in ("--layers", "--residual-scaling", "--heatmap", "--curves", "--gain", "--early-exit", "--betas"):
        figure_args.add_argument(flag, required=True)
    figure_args.add_argument("--dpi", type=int, required=True)
    args = parser.parse_args()
    tables(args) if args.command == "tables" else figures(args)


if __name__ == "__main__":
    main()
