"""Activation storage dtype (inforidge.extraction.dtype): InfoRidge's information per layer from
activation files stored in float16 and bfloat16, against float32, and the bytes of each file.

For each run's checkpoints (kept by a run with inforidge.keep_checkpoints: true), the pipeline's
extraction (infoflow.inforidge.extract, with the config's inforidge.extraction settings) writes
one file per storage dtype; the ridge analysis's estimator (infoflow.inforidge.ridge.information, the config's inforidge.mi settings) gives
I(Z;Y) and I(dZ;Y) per split, layer row and sampling seed from each file. The table has, per
dtype, the largest |difference| from float32 over all of those estimates and over their means
across sampling seeds (what the tables and the ridge report), in nats, against the issue's bound
of 1e-3 nats. The sizes table writes each file's table again under other layouts: the previous
one (snappy, plain encoding), the writer's (zstd, byte-stream split), and that without the
residual column (derivable from `hidden` unless only the normed last layer is kept).

    python benchmarks/activation_dtype.py --data resources/base-<key>/data \\
        --run modular=<checkpoints folder> --run knowledge=<checkpoints folder> [--config config.yaml]

where a checkpoints folder is `<folder>/checkpoints` of a run in results/<run>/runs.csv, kept with
inforidge.keep_checkpoints: true.
"""

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml
from threadpoolctl import threadpool_limits

import headline
from infoflow.inforidge import activations
from infoflow.inforidge.extract import extract
from infoflow.inforidge.ridge import Checkpoint, information
from infoflow.io import read_examples
from infoflow.sampling import sample
from infoflow.training import models

BOUND = 1e-3  # nats (issue 19)
KEYS = ["setting", "task", "point", "split", "quantity", "layer", "final_norm", "sample_seed"]
STRINGS = [name for name, kind in activations.SCALAR_COLUMNS.items() if kind == pa.string()]


def split_streams(columns):
    """Writer options: zstd, and byte-stream split on the vector `columns`."""
    return {"compression": "zstd", "column_encoding": {f"{name}.list.element": "BYTE_STREAM_SPLIT" for name in columns}}


# (writer options, columns left out) of each layout.
LAYOUTS = {
    "snappy, plain (before)": ({"compression": "snappy"}, []),
    "zstd, byte-stream split (the writer's)": (split_streams(activations.VECTOR_COLUMNS), []),
    "the same without `residual`": (split_streams(["hidden", "target"]), ["residual"]),
}


def run_entry(text):
    task, _, folder = text.partition("=")
    if not folder:
        raise argparse.ArgumentTypeError(f"{text!r} is not TASK=CHECKPOINTS_FOLDER")
    return task, Path(folder)


def layout_bytes(path, folder):
    """{layout: bytes} of the table at `path` written again, in row groups of the same size, under each of LAYOUTS."""
    table, sizes = pq.read_table(path), {}
    rows = pq.ParquetFile(path).metadata.row_group(0).num_rows
    for name, (options, dropped) in LAYOUTS.items():
        out = Path(folder) / "layout.parquet"
        pq.write_table(table.drop_columns(dropped), out, row_group_size=rows, use_dictionary=STRINGS, **options)
        sizes[name] = out.stat().st_size
    return sizes


def estimator_settings(settings):
    """{name: (kernel, sigma)}: the main estimate's (inforidge.mi) and the claims check's (inforidge.kernel_checks)."""
    main = settings["mi"]
    named = {f"{main['kernel']} {main['sigma']:g} (main)": (main["kernel"], main["sigma"])}
    return {**named, **{f"{c['kernel']} {c['sigma']:g}": (c["kernel"], c["sigma"]) for c in settings["kernel_checks"]}}


def measure(task, point_folder, examples, settings, folder):
    """(MI table with one `mi_<dtype>` column per dtype, {dtype: {layout: bytes}})."""
    extraction, estimate = settings["extraction"], settings["mi"]
    model, tokenizer = models.load(point_folder, dtype="float32")
    tags = {"task": task, "method": "benchmark", "seed": 0, **json.loads((point_folder / "checkpoint.json").read_text())}
    tables, layouts = [], {}
    for dtype in activations.DTYPES:
        out = Path(folder) / f"{dtype}.parquet"
        extract(model, tokenizer, examples, out, tags, extraction["batch_size"], extraction["last_layer"], dtype)
        layouts[dtype] = layout_bytes(out, folder)
        checkpoint = Checkpoint(out)
        table = pl.concat([
            information(checkpoint, estimate["examples"], estimate["sample_seeds"], kernel, sigma, estimate["alpha"]).with_columns(setting=pl.lit(name))
            for name, (kernel, sigma) in estimator_settings(settings).items()])
        tables.append(table.select(*KEYS, pl.col("mi").alias(f"mi_{dtype}")))
    joined = tables[0]
    for table in tables[1:]:
        joined = joined.join(table, on=KEYS, how="inner", validate="1:1")
    return joined, layouts


def largest_differences(table, dtype):
    """(max |diff| over estimates, max |diff| over sampling-seed means, where the first occurs) in nats."""
    difference = (pl.col(f"mi_{dtype}") - pl.col("mi_float32")).abs()
    each = table.with_columns(difference=difference).sort("difference", descending=True)
    means = table.group_by([k for k in KEYS if k != "sample_seed"]).agg(pl.col(f"mi_{dtype}").mean(), pl.col("mi_float32").mean())
    worst = each.row(0, named=True)
    where = f"{worst['task']} point {worst['point']:02d} {worst['split']} {worst['quantity']} layer {worst['layer']}" + (" (normed)" if worst["final_norm"] else "")
    return worst["difference"], means.select(difference.max()).item(), where


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=run_entry, action="append", required=True, metavar="TASK=CHECKPOINTS_FOLDER",
                        help="a run's checkpoints folder (point00, point01, ...); repeat for more runs")
    parser.add_argument("--data", type=Path, required=True, help="the world's data folder: <task>/test_id.jsonl and test_ood.jsonl")
    parser.add_argument("--config", default="config.yaml", help="its inforidge extraction and mi settings are used")
    parser.add_argument("--threads", type=int, default=1)
    headline.add_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = yaml.safe_load(open(args.config))["inforidge"]
    extraction = settings["extraction"]

    tables, layouts = [], []
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(args.threads):
        for task, checkpoints in args.run:
            splits = [args.data / task / f"{split}.jsonl" for split in ("test_id", "test_ood")]
            examples = [e for path in splits for e in sample(read_examples(path), extraction["examples"], extraction["seed"], path)]
            for point_folder in sorted(checkpoints.glob("point*")):
                table, layout = measure(task, point_folder, examples, settings, folder)
                tables.append(table)
                layouts.append(layout)
    table = pl.concat(tables)

    estimate = settings["mi"]
    print(f"{len(layouts)} checkpoints ({', '.join(t for t, _ in args.run)}), {extraction['examples']} examples per split; "
          f"estimates of N = {estimate['examples']}, {estimate['sample_seeds']} sampling seeds, alpha {estimate['alpha']}; "
          f"float32 values of I from {table['mi_float32'].min():.4f} to {table['mi_float32'].max():.4f} nats")
    print("| storage dtype | estimator | estimates | max abs difference (nats) | of seed means (nats) | largest at | within 1e-3 |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for dtype in activations.DTYPES[1:]:
        for setting in estimator_settings(settings):
            part = table.filter(pl.col("setting") == setting)
            each, means, where = largest_differences(part, dtype)
            print(f"| {dtype} | {setting} | {len(part)} | {each:.1e} | {means:.1e} | {where} | {each <= BOUND} |")
            if setting.endswith("(main)"):
                rows.append(headline.row(f"activations in {dtype}: max |I - I(float32)| per layer", f"{each:.1e} nats", f"<= {BOUND:g} nats", each <= BOUND))
    print("\nBytes per activation file (mean over the checkpoints):")
    print("| storage dtype | " + " | ".join(LAYOUTS) + " |")
    print("|---|" + "---|" * len(LAYOUTS))
    for dtype in activations.DTYPES:
        print(f"| {dtype} | " + " | ".join(f"{statistics.mean(l[dtype][name] for l in layouts):,.0f}" for name in LAYOUTS) + " |")
    headline.write(args.json, rows)


if __name__ == "__main__":
    main()
