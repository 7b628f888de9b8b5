"""The smoke config through workflow/profiles/slurm on a real single-node SLURM cluster started here."""

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import slurm_cluster
from conftest import REPO, assert_identical_results, copy_workflow, snakemake

PROFILE = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
# finetune asks for sft.devices_per_job GPUs in its rule, the others in the profile.
GPU_RULES = {rule for rule, resources in PROFILE["set-resources"].items() if resources.get("gpu")} | {"finetune"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_cluster.missing_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    with slurm_cluster.single_node_cluster(root) as env:
        yield root, env


def user_profile(folder):
    """The shipped SLURM profile with what a user sets once: the partition, no account (this cluster
    has no accounting), job states from squeue; status checks every second to keep the test short."""
    profile = copy.deepcopy(PROFILE)
    profile["default-resources"]["slurm_partition"] = slurm_cluster.PARTITION
    del profile["default-resources"]["slurm_account"]
    profile |= {
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 1,
        "seconds-between-status-checks": 1,
        "slurm-keep-successful-logs": True,
    }
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_smoke_config_runs_through_sbatch_and_matches_a_local_run(cluster, smoke_run, tmp_path):
    root, env = cluster
    workdir = copy_workflow(tmp_path / "workflow")
    result = snakemake(workdir, "--profile", user_profile(tmp_path / "profile"), env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    # Every job but the local rules was a SLURM batch job: the executor's log, the controller's record.
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", result.stderr)
    controller = (root / "slurmctld.log").read_text()
    assert len(submitted) == len(re.findall(r"_slurm_rpc_submit_batch_job: JobId=", controller)) > 40
    assert all(Path(log).is_file() for _, log in submitted)
    jobs = subprocess.run(["scontrol", "show", "job", "-o"], env=env, capture_output=True, text=True, check=True).stdout
    rules = {}
    for line in jobs.splitlines():
        rule = re.search(r"Comment=rule_([a-z_]+?)(_wildcards|\s|$)", line).group(1)
        rules.setdefault(rule, set()).add((bool(re.search(r"gres[:/]gpu[:=]1", line)), "JobState=COMPLETED" in line))
    assert set(rules) >= GPU_RULES | {"ridge_analysis", "knowledge_facts"}
    assert not set(rules) & {"accuracy_table", "ridge_figures", "flux_tables"}  # local rules stay local
    for rule, states in rules.items():
        assert states == {(rule in GPU_RULES, True)}, f"{rule}: (got a GPU, completed) = {states}"

    # The same bytes as the local run, models and Parquet files included.
    assert_identical_results(smoke_run, workdir)
