"""The sweep (infoflow.report.sweep) on the smoke config, in a temporary copy of the workflow: a
two-point grid planned as two named runs on two base models, run again where it stopped, and bad
sweep files stopped with one line before any job, leaving nothing written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_workflow
from infoflow.report import sweep
from test_workflow import job_counts, job_outputs

PROFILE = "workflow/profiles/local"


def run_sweep(workdir, grid, *options, **keys):
    """Run the sweep of `grid` (and other sweep-file `keys`) in `workdir` as `make sweep` does."""
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump({"sweep": "tiny", **keys, "grid": grid}, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "infoflow.report.sweep", path.name, "--profile", PROFILE, "--workflow-profile", "none",
                           *options], cwd=workdir, env=env, capture_output=True, text=True, check=False)


def per_point(output):
    """{run: the output of its Snakemake run} from the sweep's output."""
    pieces = re.split(r"^sweep tiny, point \d+/\d+: (\S+)$", output, flags=re.M)
    return dict(zip(pieces[1::2], pieces[2::2]))


def worlds_of(output):
    """The resources/base-<key>/ folders whose base models a point's run pretrains."""
    pretrained = [path for path in job_outputs(output) if re.fullmatch(r"resources/base-\w+/model/model\.safetensors", path)]
    return {path.removesuffix("/model/model.safetensors") for path in pretrained}


def test_two_points_plan_their_own_runs_and_base_models_and_a_rerun_goes_on_where_it_stopped(tmp_path):
    workdir = copy_workflow(tmp_path)
    result = run_sweep(workdir, {"base_model.layers": [2, 3]}, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = per_point(result.stdout)
    assert list(runs) == ["tiny-layers2", "tiny-layers3"]
    worlds = {run: worlds_of(output) for run, output in runs.items()}
    assert all(len(world) == 1 for world in worlds.values()) and worlds["tiny-layers2"] != worlds["tiny-layers3"]
    for run, output in runs.items():
        # Each point's own outputs are its run's; what it shares lives in resources/.
        assert all(path.startswith((f"results/{run}/", "resources/")) for path in job_outputs(output))
        assert f"results/{run}/claims_parts.csv" in job_outputs(output)
        # the shared base model, the modular task's own and its 2-layer copy (inforidge.depths)
        assert job_counts(output)["pretrain_base_model"] == 3
    overlay = yaml.safe_load((workdir / "results/tiny/points/layers3.yaml").read_text())
    assert overlay == {"run": "tiny-layers3", "base_model": {"layers": 3}}
    assert "effect map not drawn: no claims yet for layers2, layers3" in result.stdout
    # The world's first job done for real at both points: a second dry run plans everything but it.
    assert run_sweep(workdir, {"base_model.layers": [2, 3]}, "knowledge_facts").returncode == 0
    again = per_point(run_sweep(workdir, {"base_model.layers": [2, 3]}, "-n").stdout)
    assert len(again) == 2 and all("knowledge_facts" not in job_counts(output) and "pretrain_base_model" in job_counts(output)
                                   for output in again.values())


def test_the_worlds_sweep_expands_its_axes_into_named_points(monkeypatch):
    monkeypatch.chdir(REPO)  # where the config schema is
    worlds = sweep.read("presets/sweeps/worlds.yaml")
    assert [point.name for point in worlds.points] == [
        f"phrasings{phrasings}-modular_layers{layers}" for phrasings in (1, 4) for layers in (4, 12)]
    overlay = worlds.overlay(worlds.points[-1])
    assert overlay["run"] == "worlds-phrasings4-modular_layers12" and overlay["methods"]["int_p1_a2_late"] is None
    assert overlay["knowledge_world"] == {"qa_phrasings": 4}
    assert overlay["base_model"] == {"own_models": {"modular": {"layers": 12}}}  # a key inside a named entry


@pytest.mark.parametrize("grid, keys, message", [
    ({"base_model.layerz": [2, 3]}, {}, "grid.base_model.layerz: not a config key (workflow/schemas/config.schema.yaml)"),
    ({"base_model.layers": []}, {}, "grid.base_model.layers: no values (give a list of one or more)"),
    ({"width": [{"base_model.hidden": 32}]}, {}, "grid.width: base_model.hidden: not a config key (workflow/schemas/config.schema.yaml)"),
    ({"width": [{"base_model.hidden_size": 32}, {"base_model.heads": 4}]}, {},
     "grid.width: every value must set the same keys (base_model.hidden_size)"),
    ({"base_model.layers": [2]}, {"gird": {}}, "gird: unknown key (a sweep file has sweep, configfiles, base, labels, grid)"),
    ({"base_model.layers": [2]}, {"base": {"run": "mine"}},
     "base: not a config overlay without `run` (the sweep names each point's run, <sweep>-<point>)"),
    # A value the schema refuses: the point's plan (a dry run) stops the sweep before any job runs.
    ({"base_model.layers": [0, 2]}, {},
     "point layers0 ({'base_model.layers': 0}): config error: base_model.layers: 0 is less than the minimum of 1"),
])
def test_a_bad_sweep_file_stops_with_one_line_naming_key_and_file_and_writes_nothing(tmp_path, grid, keys, message):
    workdir = copy_workflow(tmp_path)
    result = run_sweep(workdir, grid, **keys)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"sweep error: sweep.yaml: {message}"]
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()
