# infoflow: data prep -> base model -> post-training (with checkpoints) -> evaluation and activation
# extraction -> InfoSteer and InfoRidge analyses -> tables and figures.
# Run: snakemake --cores 2   (see README.md)
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/forkserver.smk"
include: "workflow/rules/stages.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/key_shift.smk"
include: "workflow/rules/ridge.smk"
include: "workflow/rules/flux.smk"
include: "workflow/rules/depth.smk"
include: "workflow/rules/multitoken.smk"
include: "workflow/rules/attention.smk"
include: "workflow/rules/surrogates.smk"
include: "workflow/rules/report.smk"


localrules:
    accuracy_table,
    knowledge_recall_table,
    accuracy_figure,
    steering_tables,
    key_shift_report,
    ridge_tables,
    ridge_figures,
    flux_tables,
    flux_figures,
    depth_report,
    multitoken_report,
    attention_tables,
    attention_figure,
    surrogate_tables,
    surrogate_figure,
    claims,
    run_config,


check_profile()
check_disk_budget()


rule all:
    input:
        "<results>/config.yaml",
        "<results>/runs.csv",
        "<results>/provenance.json",
        "<results>/tables/accuracy.csv",
        "<results>/tables/accuracy.md",
        RECALL_TABLES,
        "<results>/figures/accuracy.png",
        "<results>/tables/steering_vs_sft.md",
        "<results>/tables/ablation.md",
        "<results>/tables/key_shift.md",
        "<results>/figures/key_shift.png",
        "<results>/tables/ridge.md",
        "<results>/figures/ridge_heatmap.png",
        "<results>/figures/ridge_curves.png",
        "<results>/figures/ridge_gain.png",
        "<results>/figures/early_exit.png",
        "<results>/figures/residual_scaling.png",
        "<results>/tables/flux.md",
        "<results>/flux.html",
        "<results>/figures/flux_examples.png",
        "<results>/figures/flux_classes.png",
        DEPTH_TARGETS,
        "<results>/tables/multitoken.md",
        "<results>/figures/multitoken_heatmap.png",
        "<results>/figures/multitoken_curves.png",
        ATTENTION_TARGETS,
        "<results>/tables/surrogates.md",
        "<results>/figures/surrogates.png",
        "<results>/claims.md",
