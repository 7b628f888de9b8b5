import json

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from conftest import run_module
from infoflow import parquet
from infoflow.inforidge import activations
from infoflow.training import models
from infoflow.inforidge.extract import final_norm
from infoflow.training.sft_data import encode
from infoflow.cli import StageFailure
from infoflow.io import DataError, read_examples
from infoflow.training.layers import decoder_layers


@pytest.fixture(scope="module")
def checkpoints(tiny_world, tiny_model_dir, tmp_path_factory):
    """A short SFT run of the tiny model that saves step 0 and 3 evenly spaced checkpoints."""
    root = tmp_path_factory.mktemp("run")
    run_module(
        "posttrain.finetune", "--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"], "--method", "sft",
        "--learning-rate", 1e-3, "--epochs", 2, "--batch-size", 4, "--warmup-steps", 0, "--weight-decay", 0.0,
        "--seed", 0, "--threads", 1, "--out", root / "model", "--history", root / "history.json",
        "--checkpoints", 3, "--checkpoint-dir", root / "checkpoints",
    )
    return root


def weights(folder):
    model, _ = models.load(folder)
    return model.state_dict()


def test_checkpoints_span_training_from_step_0_to_the_final_model(checkpoints, tiny_model_dir):
    folders = sorted((checkpoints / "checkpoints").iterdir())
    assert [f.name for f in folders] == ["point00", "point01", "point02", "point03"]
    steps = [json.loads((f / "checkpoint.json").read_text())["step"] for f in folders]
    assert steps == [0, 3, 7, 10]  # 20 examples / batch 4 x 2 epochs = 10 steps
    first, last, final, base = weights(folders[0]), weights(folders[-1]), weights(checkpoints / "model"), weights(tiny_model_dir)
    assert all(torch.equal(first[k], base[k]) for k in base)
    assert all(torch.equal(last[k], final[k]) for k in final)
    assert not all(torch.equal(first[k], last[k]) for k in base)


def extract(checkpoints, tiny_world, out, *extra, sample=6, last_layer="both"):
    return run_module(
        "inforidge.extract", "--checkpoints", checkpoints / "checkpoints" / "point03", "--out", out,
        "--examples", tiny_world["paths"]["k_test_id"], tiny_world["paths"]["k_test_ood"],
        "--sample", sample, "--sample-seed", 0, "--batch-size", 4, "--last-layer", last_layer,
        "--task", "knowledge", "--method", "sft", "--seed", 0, "--threads", 1, *extra,
    )


def test_parquet_holds_the_states_of_a_direct_forward_pass(checkpoints, tiny_world, tmp_path):
    out = tmp_path / "point03.parquet"
    extract(checkpoints, tiny_world, out)
    table = activations.read(out)
    model, tokenizer = models.load(checkpoints / "checkpoints" / "point03")
    n_layers = model.config.num_hidden_layers
    examples = {e["id"]: e for path in ("k_test_id", "k_test_ood") for e in read_examples(tiny_world["paths"][path])}
    frame = table.drop_columns(list(activations.VECTOR_COLUMNS)).to_pandas()
    hidden, residual, target = (parquet.vectors(table, c) for c in activations.VECTOR_COLUMNS)
    assert set(frame.split) == {"test_id", "test_ood"} and frame.example_id.nunique() == 12
    assert (frame.step == 10).all() and (frame.point == 3).all() and (frame.run == "knowledge/sft/seed0").all()
    assert len(frame) == 12 * (n_layers + 2)
    for example_id, rows in frame.groupby("example_id"):
        example = examples[example_id]
        features = encode(tokenizer, example["prompt"], example["answer"])
        prompt = tokenizer(example["prompt"], return_tensors="pt").input_ids
        captured = []
        handle = decoder_layers(model)[-1].register_forward_hook(lambda m, a, o: captured.append(o[0] if isinstance(o, tuple) else o))
        with torch.no_grad():
            direct = [h[0, -1] for h in model(prompt, output_hidden_states=True).hidden_states]
        handle.remove()
        raw = [*direct[:-1], captured[0][0, -1]]
        target_token = features["input_ids"][prompt.shape[1]]
        for index, row in rows.iterrows():
            expected = direct[-1] if row.final_norm else raw[row.layer]
            assert torch.allclose(torch.tensor(hidden[index]), expected, atol=1e-5)
            previous = raw[row.layer - 1] if row.layer > 0 else torch.zeros_like(expected)
            assert torch.allclose(torch.tensor(residual[index]), expected - previous, atol=1e-5)
            assert np.array_equal(target[index], model.get_input_embeddings().weight[target_token].detach().numpy())
            assert row.target_token == target_token
            with torch.no_grad():
                logits = model.lm_head(expected if row.final_norm else final_norm(model)(expected))
            assert row.early_exit_token == int(logits.argmax())
        assert sorted(rows.layer[~rows.final_norm]) == list(range(n_layers + 1))
        assert list(rows.layer[rows.final_norm]) == [n_layers]


def test_last_layer_flag_chooses_the_rows(checkpoints, tiny_world, tmp_path):
    extract(checkpoints, tiny_world, tmp_path / "raw.parquet", last_layer="raw")
    extract(checkpoints, tiny_world, tmp_path / "normed.parquet", last_layer="normed")
    raw = activations.read(tmp_path / "raw.parquet").to_pandas()
    normed = activations.read(tmp_path / "normed.parquet").to_pandas()
    assert not raw.final_norm.any()
    last = normed.layer.max()
    assert normed[normed.layer == last].final_norm.all() and not normed[normed.layer < last].final_norm.any()
    assert len(raw) == len(normed)


def test_sample_larger_than_the_split_is_an_error_naming_the_count(checkpoints, tiny_world, tmp_path):
    result = run_module("inforidge.extract", *extract_args(checkpoints, tiny_world, tmp_path / "x.parquet", sample=1000), check=False)
    assert result.returncode == 1
    assert "1000 examples requested for extraction, 20 exist" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


def extract_args(checkpoints, tiny_world, out, sample):
    return ["--checkpoints", checkpoints / "checkpoints" / "point03", "--out", out,
            "--examples", tiny_world["paths"]["k_test_id"], "--sample", sample, "--sample-seed", 0,
            "--batch-size", 4, "--last-layer", "raw", "--task", "knowledge", "--method", "sft", "--seed", 0, "--threads", 1]


def small_table(width=3, rows=4):
    columns = {name: ["x"] * rows for name, kind in activations.SCALAR_COLUMNS.items() if kind == pa.string()}
    columns.update({name: np.arange(rows) for name, kind in activations.SCALAR_COLUMNS.items() if pa.types.is_integer(kind)})
    columns["final_norm"] = [False] * rows
    columns.update({name: np.ones((rows, width)) for name in activations.VECTOR_COLUMNS})
    return columns


def test_streamed_writer_round_trips_and_leaves_nothing_on_error(tmp_path):
    with activations.writer(tmp_path / "a.parquet", 3) as write:
        write(small_table())
        write(small_table(rows=2))
    table = activations.read(tmp_path / "a.parquet")
    assert table.num_rows == 6 and parquet.vectors(table, "hidden").shape == (6, 3)
    with pytest.raises(RuntimeError):
        with activations.writer(tmp_path / "b.parquet", 3) as write:
            write(small_table())
            raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t.drop_columns(["target"]), "missing column 'target'"),
        (lambda t: t.set_column(t.schema.get_field_index("hidden"), "hidden",
                                pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(16, np.float32)), 4)),
         "vector widths differ"),
        (lambda t: t.set_column(t.schema.get_field_index("residual"), "residual",
                                pa.FixedSizeListArray.from_arrays(pa.array(np.r_[np.nan, np.ones(8), np.inf, np.ones(2)].astype(np.float32)), 3)),
         "column 'residual' has NaN or infinite values in 2 rows"),
        (lambda t: t.set_column(t.schema.get_field_index("target"), "target", pa.array([[1.0]] * 4)),
         "column 'target' is list<.*double>, expected a fixed-size list of float32"),
    ],
)
@pytest.mark.parametrize("reader", [activations.read, activations.scan])
def test_damaged_files_are_errors_naming_file_and_column(tmp_path, damage, message, reader):
    path = tmp_path / "bad.parquet"
    pq.write_table(damage(pa.Table.from_batches([parquet.record_batch(small_table(), activations.schema(3))])), path)
    with pytest.raises(DataError, match=message) as error:
        reader(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("reader", [activations.read, activations.scan])
def test_truncated_file_is_an_error_naming_it(tmp_path, reader):
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.Table.from_batches([parquet.record_batch(small_table(), activations.schema(3))]), path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="not a readable Parquet file"):
        reader(path)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        reader(tmp_path / "missing.parquet")


def test_scan_reads_only_the_columns_and_rows_asked_for(tmp_path):
    columns = small_table(rows=4)
    columns["split"] = ["test_id", "test_ood", "test_id", "test_ood"]
    columns["hidden"] = np.arange(12.0).reshape(4, 3)
    columns["hidden"][1, 0] = np.nan  # in a test_ood row only
    path = tmp_path / "a.parquet"
    with activations.writer(path, 3) as write:
        write(columns)
    frame = activations.scan(path, ["layer", "hidden"], pl.col("split") == "test_id")
    assert frame.columns == ["layer", "hidden"] and frame["layer"].to_list() == [0, 2]
    assert np.array_equal(frame["hidden"].to_numpy(), np.array([[0, 1, 2], [6, 7, 8]], np.float32))
    assert frame["hidden"].to_numpy().dtype == np.float32
    with pytest.raises(DataError, match="column 'hidden' has NaN or infinite values in 1 rows"):
        activations.scan(path, ["hidden"], pl.col("split") == "test_ood")


@pytest.mark.parametrize("dtype, stored_type, rounded", [
    ("float16", pa.float16(), lambda x: x.astype(np.float16).astype(np.float32)),
    ("bfloat16", pa.float32(), lambda x: torch.from_numpy(x).bfloat16().float().numpy()),
])
def test_16_bit_vectors_are_read_back_as_float32_of_the_rounded_values(tmp_path, dtype, stored_type, rounded):
    columns = small_table(width=3, rows=4)
    columns.update({name: np.random.default_rng(i).normal(size=(4, 3)).astype(np.float32) for i, name in enumerate(activations.VECTOR_COLUMNS)})
    path = tmp_path / "a.parquet"
    with activations.writer(path, 3, dtype) as write:
        write(columns)
    assert all(parquet.schema(path).field(name).type.value_type == stored_type for name in activations.VECTOR_COLUMNS)
    table, frame = activations.read(path), activations.scan(path)
    for name in activations.VECTOR_COLUMNS:
        for values in (parquet.vectors(table, name), frame[name].to_numpy()):
            assert values.dtype == np.float32 and np.array_equal(values, rounded(columns[name]))
            assert not np.array_equal(values, columns[name])  # rounded indeed


def test_values_beyond_float16_are_an_error_naming_the_setting(tmp_path):
    columns = small_table(width=3, rows=4)
    columns["residual"] = np.full((4, 3), 7e4, np.float32)  # float16's largest is 65504
    with pytest.raises(StageFailure, match="column 'residual' has values beyond float16's range in 4 rows .largest magnitude 7e.04.; "
                                           "set inforidge.extraction.dtype to float32"):
        with activations.writer(tmp_path / "a.parquet", 3, "float16") as write:
            write(columns)
    assert not list(tmp_path.iterdir())
    with activations.writer(tmp_path / "b.parquet", 3, "bfloat16") as write:  # bfloat16 has float32's range
        write(columns)


def test_extraction_in_16_bits_stores_the_rounded_states_in_smaller_files(checkpoints, tiny_world, tmp_path):
    files = {dtype: tmp_path / f"{dtype}.parquet" for dtype in activations.DTYPES}
    for dtype, out in files.items():
        extract(checkpoints, tiny_world, out, "--vector-dtype", dtype, sample=20)
    exact = parquet.vectors(activations.read(files["float32"]), "hidden")
    for dtype, resolution in (("float16", 2**-11), ("bfloat16", 2**-8)):
        values = parquet.vectors(activations.read(files[dtype]), "hidden")
        assert np.allclose(values, exact, rtol=resolution, atol=1e-6) and not np.array_equal(values, exact)
        # 0.75 and 0.71 here, where the scalar columns and the footer weigh more than at the
        # default run's width (0.53 and 0.41 there, benchmarks/activation_dtype.py)
        assert files[dtype].stat().st_size < 0.8 * files["float32"].stat().st_size
