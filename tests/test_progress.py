import json
import logging
import re
import shutil

from conftest import run_module
from infoflow import cli

# e.g. 'infoflow.inforidge.extract: batch 3/12 (96/380 examples, 1.9 s/batch, ETA 17s)'
BATCH_LINE = re.compile(r"(infoflow\.[\w.]+): batch (\d+)/(\d+) \((\d+)/(\d+) examples, \d+\.\d s/batch, ETA \d+(s|m\d\ds|h\d\dm)\)$")


def batch_lines(stderr):
    """(logger, batch, batches, done, examples) of each progress line in a job's log."""
    return [(m[1], *map(int, m.groups()[1:5])) for m in map(BATCH_LINE.search, stderr.splitlines()) if m]


def test_durations_read_like_a_clock():
    assert [cli.duration(s) for s in (0, 17.4, 59.6, 81, 3599, 3600, 7380)] == ["0s", "17s", "1m00s", "1m21s", "59m59s", "1h00m", "2h03m"]


def test_batches_are_the_slices_of_the_plain_loop_and_each_is_logged(caplog):
    items, log = list(range(10)), logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        assert list(cli.batches(items, 4, log)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batch_lines("\n".join(f"infoflow.x: {r.getMessage()}" for r in caplog.records)) == [
        ("infoflow.x", 1, 3, 4, 10), ("infoflow.x", 2, 3, 8, 10), ("infoflow.x", 3, 3, 10, 10)]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="test.progress"):
        assert list(cli.batches(items, 10, log)) == [items] and list(cli.batches([], 4, log)) == []
    assert not caplog.records  # one batch (or none): nothing to tell


def test_evaluation_logs_each_batch_of_each_split(tiny_world, tiny_model_dir, tmp_path):
    examples = [tiny_world["paths"]["k_test_id"], tiny_world["paths"]["k_test_ood"]]
    result = run_module("posttrain.evaluate", "--model", tiny_model_dir, "--examples", *examples, "--splits", "test_id", "test_ood",
                        "--max-new-tokens", 2, "--batch-size", 4, "--threads", 1,
                        "--predictions", tmp_path / "a.csv", tmp_path / "b.csv", "--metrics", tmp_path / "a.json", tmp_path / "b.json")
    expected = []
    for split in ("test_id", "test_ood"):
        n = len(tiny_world["knowledge"][split])
        batches = -(-n // 4)
        expected += [("infoflow.training.generation", i, batches, min(4 * i, n), n) for i in range(1, batches + 1)]
    assert batch_lines(result.stderr) == expected


def test_extraction_and_flux_log_each_batch(tiny_world, tiny_model_dir, tmp_path):
    checkpoint = shutil.copytree(tiny_model_dir, tmp_path / "point00")
    (checkpoint / "checkpoint.json").write_text(json.dumps({"point": 0, "step": 0}))
    extract = run_module("inforidge.extract", "--checkpoints", checkpoint, "--out", tmp_path / "a.parquet",
                         "--examples", tiny_world["paths"]["k_test_id"], "--sample", 6, "--sample-seed", 0, "--batch-size", 4,
                         "--last-layer", "raw", "--task", "knowledge", "--method", "sft", "--seed", 0, "--threads", 1)
    assert batch_lines(extract.stderr) == [("infoflow.inforidge.extract", 1, 2, 4, 6), ("infoflow.inforidge.extract", 2, 2, 6, 6)]
    flux = run_module("infosteer.flux", "--model", tiny_model_dir, "--prompts", tiny_world["paths"]["k_cloze"], "--sample", 6,
                      "--sample-seed", 0, "--max-new-tokens", 3, "--batch-size", 4, "--normalization", "abs",
                      "--task", "knowledge", "--method", "sft", "--seed", 0, "--threads", 1, "--out", tmp_path / "flux.parquet")
    # Flux's own batches only: each is decoded as one batch, which logs no line of its own.
    assert batch_lines(flux.stderr) == [("infoflow.infosteer.flux", 1, 2, 4, 6), ("infoflow.infosteer.flux", 2, 2, 6, 6)]
