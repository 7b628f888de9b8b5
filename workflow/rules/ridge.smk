rule extract_activations:
    """Hidden states, residual updates and target embeddings of one run's checkpoints, to Parquet."""
    input:
        checkpoints=expand(f"{CHAIN}/checkpoints/point{{point}}", point=POINTS, allow_missing=True),
        examples=test_files,
        code=code("inforidge.extract"),
    output:
        expand(f"{ACTIVATIONS}/point{{point}}.parquet", point=POINTS, allow_missing=True),
    log:
        f"{ACTIVATIONS}/extract.log",
    benchmark:
        f"{ACTIVATIONS}/extract.tsv"
    # Before any other ready job: a run's checkpoints are deleted once extracted, so at most a
    # few runs' checkpoints are on disk at once (infoflow.disk counts two per core).
    priority: 10
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        extraction=RIDGE["extraction"],
    shell:
        GPU_JOB
        + "python -m infoflow.inforidge.extract --checkpoints {input.checkpoints} --out {output}"
        " --examples {input.examples} --sample {params.extraction[examples]} --sample-seed {params.extraction[seed]}"
        " --batch-size {params.extraction[batch_size]} --last-layer {params.extraction[last_layer]}"
        " --vector-dtype {params.extraction[dtype]}"
        " --task {wildcards.task} --method {wildcards.method} --seed {wildcards.seed} --threads {threads} {params.model_options} > {log} 2>&1"


rule ridge_analysis:
    """Predictive information, early exit and linear probes per layer of one run, from its Parquet files."""
    input:
        activations=expand(
            f"{ACTIVATIONS}/point{{point}}.parquet", point=POINTS, allow_missing=True
        ),
        code=code("inforidge.ridge"),
    output:
        mi=run_result(
            f"{RIDGE_ANALYSIS}/mi.csv",
            "InfoRidge",
            "Information per layer, per run",
            "ridge_run",
        ),
        early_exit=run_result(
            f"{RIDGE_ANALYSIS}/early_exit.csv",
            "InfoRidge",
            "Early exit, per run",
            "ridge_run",
        ),
        probes=run_result(
            f"{RIDGE_ANALYSIS}/probes.csv",
            "InfoRidge",
            "Linear probes, per run",
            "ridge_run",
        ),
    log:
        f"{RIDGE_ANALYSIS}/ridge.log",
    benchmark:
        f"{RIDGE_ANALYSIS}/ridge.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        mi=RIDGE["mi"],
        probe_seed=RIDGE["probe_seed"],
    shell:
        "python -m infoflow.inforidge.ridge --activations {input.activations} --examples {params.mi[examples]}"
        " --sample-seeds {params.mi[sample_seeds]} --kernel {params.mi[kernel]} --sigma {params.mi[sigma]}"
        " --alpha {params.mi[alpha]} --probe-seed {params.probe_seed} --threads {threads}"
        " --mi {output.mi} --early-exit {output.early_exit} --probes {output.probes} > {log} 2>&1"


rule kernel_check:
    """I(Z;Y) per layer of one run's final checkpoint under the other kernel settings of the claims check."""
    input:
        activations=f"{ACTIVATIONS}/point{POINTS[-1]}.parquet",
        code=code("inforidge.kernel_check"),
    output:
        f"{KERNELS}/kernels.csv",
    log:
        f"{KERNELS}/kernel_check.log",
    benchmark:
        f"{KERNELS}/kernel_check.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        # The main estimate's sample and Renyi order; its kernel and width do not matter here.
        sample={key: RIDGE["mi"][key] for key in ("examples", "sample_seeds", "alpha")},
        settings=" ".join(f"{c['kernel']}:{c['sigma']}" for c in RIDGE["kernel_checks"]),
    shell:
        "python -m infoflow.inforidge.kernel_check --activations {input.activations} --settings {params.settings}"
        " --examples {params.sample[examples]} --sample-seeds {params.sample[sample_seeds]} --alpha {params.sample[alpha]}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule fit_residual_scaling:
    """Per-block residual scaling coefficients of one frozen fine-tuned model, fitted on ID and on OOD data."""
    input:
        weights=f"{CHAIN}/model/model.safetensors",
        id=lambda w: data_file(w.task, "test_id"),
        ood=lambda w: data_file(w.task, "test_ood"),
        code=code("inforidge.residual_scaling"),
    output:
        betas=run_result(
            f"{RESIDUAL_SCALING}/betas.csv",
            "InfoRidge",
            "Residual scaling, per run",
            "residual_scaling",
        ),
        summary=f"{RESIDUAL_SCALING}/summary.json",
    log:
        f"{RESIDUAL_SCALING}/fit.log",
    benchmark:
        f"{RESIDUAL_SCALING}/fit.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        fit=without(RIDGE["residual_scaling"], "methods"),
    shell:
        GPU_JOB
        + "python -m infoflow.inforidge.residual_scaling --model $(dirname {input.weights}) --id {input.id} --ood {input.ood}"
        " --seeds {params.fit[seeds]} --fit-fraction {params.fit[fit_fraction]} --batch-size {params.fit[batch_size]}"
        " --learning-rate {params.fit[learning_rate]} --epochs {params.fit[epochs]} --threads {threads} {params.model_options}"
        " --tags task={wildcards.task} method={wildcards.method} seed={wildcards.seed}"
        " --out {output.betas} --summary {output.summary} > {log} 2>&1"


rule ridge_tables:
    """InfoRidge tables over runs: information per layer (Table 1's shape), ridge layers, residual scaling."""
    input:
        mi=run_files(f"{RIDGE_ANALYSIS}/mi.csv", runs=RIDGE_RUNS),
        early_exit=run_files(f"{RIDGE_ANALYSIS}/early_exit.csv", runs=RIDGE_RUNS),
        probes=run_files(f"{RIDGE_ANALYSIS}/probes.csv", runs=RIDGE_RUNS),
        betas=run_files(
            f"{RESIDUAL_SCALING}/betas.csv",
            runs=SCALED_RUNS,
        ),
        summaries=run_files(
            f"{RESIDUAL_SCALING}/summary.json",
            runs=SCALED_RUNS,
        ),
        code=code("report.ridge_tables"),
    output:
        layers=result(
            "<results>/tables/ridge_layers.csv",
            "InfoRidge",
            "Generalization ridge",
            "ridge",
            table="information per layer",
        ),
        ridge=result(
            "<results>/tables/ridge.csv",
            "InfoRidge",
            "Generalization ridge",
            "ridge",
            table="ridge layer",
        ),
        betas=result(
            "<results>/tables/residual_scaling.csv",
            "InfoRidge",
            "Residual scaling",
            "residual_scaling",
            table="coefficients",
        ),
        markdown="<results>/tables/ridge.md",
    log:
        "<results>/logs/ridge_tables.log",
    benchmark:
        "<results>/benchmarks/ridge_tables.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m infoflow.report.ridge_tables --mi {input.mi} --early-exit {input.early_exit} --probes {input.probes}"
        " --betas {input.betas} --summaries {input.summaries}"
        " --layers {output.layers} --ridge {output.ridge} --residual-scaling {output.betas} --markdown {output.markdown} > {log} 2>&1"


rule ridge_figures:
    """Information heatmap over training, curves with bands, incremental gain, early exit and betas."""
    input:
        layers="<results>/tables/ridge_layers.csv",
        betas="<results>/tables/residual_scaling.csv",
        code=code("report.ridge_figures"),
    output:
        heatmap=result(
            "<results>/figures/ridge_heatmap.png",
            "InfoRidge",
            "Generalization ridge",
            "ridge",
            figure="information over training",
        ),
        curves=result(
            "<results>/figures/ridge_curves.png",
            "InfoRidge",
            "Generalization ridge",
            "ridge",
            figure="information per layer",
        ),
        gain=result(
            "<results>/figures/ridge_gain.png",
            "InfoRidge",
            "Generalization ridge",
            "ridge",
            figure="incremental information",
        ),
        early_exit=result(
            "<results>/figures/early_exit.png",
            "InfoRidge",
            "Generalization ridge",
            "ridge",
            figure="early exit",
        ),
        betas=result(
            "<results>/figures/residual_scaling.png",
            "InfoRidge",
            "Residual scaling",
            "residual_scaling",
            figure="coefficients",
        ),
    log:
        "<results>/logs/ridge_figures.log",
    benchmark:
        "<results>/benchmarks/ridge_figures.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.ridge_figures --layers {input.layers} --residual-scaling {input.betas} --dpi {params.dpi}"
        " --heatmap {output.heatmap} --curves {output.curves} --gain {output.gain} --early-exit {output.early_exit}"
        " --betas {output.betas} > {log} 2>&1"
