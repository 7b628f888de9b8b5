# The evaluation metrics files the tables and the claims read: every run's, and the base model's.
RUN_METRICS = run_files(f"{EVALUATION}/{{split}}.json", split=TEST_SPLITS)
RUN_PREDICTIONS = run_files(f"{EVALUATION}/{{split}}.csv", split=TEST_SPLITS)
BASE_EVALUATIONS = [
    f"<world>/base/{task}/eval-{stage_keys(task)['base_evaluation']}/{split}"
    for task in TASKS
    for split in TEST_SPLITS
]
BASE_METRICS = [f"{path}.json" for path in BASE_EVALUATIONS]


rule accuracy_table:
    """ID and OOD accuracy per task and method (mean and 95% CI over seeds), and of the base model."""
    input:
        metrics=RUN_METRICS,
        base_metrics=BASE_METRICS,
        code=code("report.tables"),
    output:
        csv=result(
            "<results>/tables/accuracy.csv",
            "InfoSteer",
            "ID and OOD accuracy",
            "accuracy",
            table="accuracy",
        ),
        markdown="<results>/tables/accuracy.md",
    log:
        "<results>/logs/accuracy_table.log",
    benchmark:
        "<results>/benchmarks/accuracy_table.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m infoflow.report.tables accuracy --metrics {input.base_metrics} {input.metrics}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"


rule knowledge_recall_table:
    """The base model's cloze recall of the facts, per attribute."""
    input:
        metrics=RECALL_METRICS,
        code=code("report.tables"),
    output:
        csv=result(
            "<results>/tables/knowledge_recall.csv",
            "InfoSteer",
            "Base model",
            "recall",
            table="cloze recall",
        ),
        markdown="<results>/tables/knowledge_recall.md",
    log:
        "<results>/logs/knowledge_recall_table.log",
    benchmark:
        "<results>/benchmarks/knowledge_recall_table.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m infoflow.report.tables recall --metrics {input.metrics}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"


rule accuracy_figure:
    """ID/OOD accuracy per task and method, with 95% CIs and per-seed points."""
    input:
        table="<results>/tables/accuracy.csv",
        code=code("report.figures"),
    output:
        figure=result(
            "<results>/figures/accuracy.png",
            "InfoSteer",
            "ID and OOD accuracy",
            "accuracy",
            figure="accuracy",
        ),
    log:
        "<results>/logs/accuracy_figure.log",
    benchmark:
        "<results>/benchmarks/accuracy_figure.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.figures accuracy --table {input.table} --dpi {params.dpi}"
        " --out {output.figure} > {log} 2>&1"


rule steering_tables:
    """Each steered method against SFT (paired bootstrap), and the ablation table."""
    input:
        metrics=RUN_METRICS,
        predictions=RUN_PREDICTIONS,
        code=code("report.comparison"),
    output:
        csv=result(
            "<results>/tables/steering_vs_sft.csv",
            "InfoSteer",
            "Steering vs SFT",
            "steering",
            table="paired difference",
        ),
        comparison="<results>/tables/steering_vs_sft.md",
        ablation="<results>/tables/ablation.md",
    log:
        "<results>/logs/steering_tables.log",
    benchmark:
        "<results>/benchmarks/steering_tables.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        methods=json.dumps(config["methods"], sort_keys=True),
        statistics=config["statistics"],
    shell:
        "python -m infoflow.report.comparison --metrics {input.metrics} --methods {params.methods:q}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --csv {output.csv} --comparison {output.comparison} --ablation {output.ablation} > {log} 2>&1"


rule claims:
    """Every headline claim of both papers against this run: measurement, 95% CI, verdict and its rule."""
    input:
        steering="<results>/tables/steering_vs_sft.csv",
        metrics=RUN_METRICS,
        predictions=RUN_PREDICTIONS,
        base_metrics=BASE_METRICS,
        base_predictions=[f"{path}.csv" for path in BASE_EVALUATIONS],
        recall=RECALL_METRICS,
        key_shares=[BASE_KEY_SHARES, *KEY_SHIFT_RUN_SHARES],
        flux_tokens=run_files(f"{TOKEN_FLUX}/tokens.parquet", runs=FLUX_RUNS),
        mi=run_files(f"{RIDGE_ANALYSIS}/mi.csv", runs=RIDGE_RUNS),
        early_exit=run_files(f"{RIDGE_ANALYSIS}/early_exit.csv", runs=RIDGE_RUNS),
        betas=run_files(f"{RESIDUAL_SCALING}/betas.csv", runs=SCALED_RUNS),
        kernels=run_files(f"{KERNELS}/kernels.csv", runs=KERNEL_RUNS),
        multitoken=MULTITOKEN_MI,
        attention=run_files(f"{ATTENTION_MASSES}/masses.csv", runs=ATTENTION_RUNS),
        code=code("report.claims.__main__"),
    output:
        csv=result("<results>/claims.csv", "Claims", "Claims check", "claims", table="verdicts"),
        markdown="<results>/claims.md",
        # every judged part's estimate, CI, MDE and verdict as numbers (the sweep's effect map)
        parts="<results>/claims_parts.csv",
    log:
        "<results>/logs/claims.log",
    benchmark:
        "<results>/benchmarks/claims.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kernel=RIDGE["mi"]["kernel"],
        sigma=RIDGE["mi"]["sigma"],
        depth=(
            f"--depth-task {DEPTHS['task']} --depth-methods {' '.join(DEPTH_METHODS)}"
            if DEPTH_METHODS
            else ""
        ),
        statistics=config["statistics"],
    shell:
        "python -m infoflow.report.claims --steering {input.steering} --metrics {input.metrics}"
        " --base-metrics {input.base_metrics} --recall {input.recall}"
        " --key-shares {input.key_shares} --flux-tokens {input.flux_tokens}"
        " --mi {input.mi} --early-exit {input.early_exit} --betas {input.betas} --kernel-mi {input.kernels}"
        " --kernel {params.kernel} --sigma {params.sigma} --attention {input.attention}"
        " {params.depth} --multitoken {input.multitoken}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --markdown {output.markdown} --csv {output.csv} --parts {output.parts} > {log} 2>&1"


rule run_config:
    """The run's merged config (config.yaml under every overlay, validated), beside its results, and
    the index of where its post-training runs' outputs are (runs.csv)."""
    output:
        config="<results>/config.yaml",
        runs="<results>/runs.csv",
    log:
        "<results>/logs/run_config.log",
    benchmark:
        "<results>/benchmarks/run_config.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        # As a param, any change to the merged config reruns this job (and only this job).
        config=json.dumps(config),
        runs=json.dumps(run_index()),
    shell:
        "python -m infoflow.report.run_record --config-json {params.config:q} --runs-json {params.runs:q}"
        " --out {output.config} --runs {output.runs} > {log} 2>&1"


rule provenance:
    """What made this run: the pipeline's commit, library versions, the merged config's hash, the
    base model (hub revision or content hash), every data file's hash, the device and dtype."""
    input:
        config="<results>/config.yaml",
        # every base model a run starts from (the depth analysis's too)
        base=list(
            dict.fromkeys(
                f
                for task, method in [(t, None) for t in TASKS] + [run[:2] for run in RUNS]
                for f in base_model_files(task, method)
            )
        ),
        data=sorted({data_file(t, s) for t in TASKS for s in ("train", *TEST_SPLITS)}),
        code=code("training.provenance"),
    output:
        "<results>/provenance.json",
    log:
        "<results>/logs/provenance.log",
    benchmark:
        "<results>/benchmarks/provenance.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        # On the kind of node that trains, so that the device recorded is the training device.
        gpu=1,
    params:
        base_models=lambda w, input: [os.path.dirname(f) for f in input.base] or [PRETRAINED],
    shell:
        GPU_JOB
        + "python -m infoflow.training.provenance --config {input.config} --base-models {params.base_models:q}"
        " --data {input.data} --out {output} > {log} 2>&1"
