import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from infoflow.config import ConfigError, check, describe_schema_error


# Bad config stops here, before any job, with one line naming the key.
try:
    validate(config, "../schemas/config.schema.yaml")
    check(config)
except WorkflowError as e:
    # Snakemake wraps the jsonschema ValidationError; it is the exception being handled there.
    cause = e.__cause__ or e.__context__
    sys.exit(f"config error: {describe_schema_error(cause) if cause else e}")
except ConfigError as e:
    sys.exit(f"config error: {e}")


TASKS = config["tasks"]
METHODS = list(config["methods"])
SEEDS = [str(s) for s in config["seeds"]]
TEST_SPLITS = ["test_id", "test_ood"]

wildcard_constraints:
    task="|".join(TASKS),
    method="|".join(METHODS),
    seed=r"\d+",
    split="|".join(TEST_SPLITS),


def sft_settings(wildcards):
    """The post-training settings of one task: editing another task's epochs does not rerun it."""
    settings = dict(config["sft"])
    settings["epochs"] = config["sft"]["epochs"][wildcards.task]
    return settings


def code(*modules):
    """The src files a rule runs (its module and what it imports), so editing them reruns the rule."""
    return [f"src/infoflow/{m}.py" for m in ("__init__", "cli", "io", *modules)]

