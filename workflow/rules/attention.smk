# The SFT ridge layer shown beside the attention masses: the information curves of the same runs.
ATTENTION_RIDGE_RUNS = [run for run in ATTENTION_RUNS if run in RIDGE_RUNS]
# The stage's results; none when the run has no runs of its task (e.g. a preset without it).
ATTENTION_TARGETS = (
    ["<results>/tables/attention.md", "<results>/figures/attention.png"] if ATTENTION_RUNS else []
)


rule attention_masses:
    """Attention mass from the prediction position to signal, noise and last tokens per layer of one final model, to CSV."""
    input:
        weights=f"{CHAIN}/model/model.safetensors",
        examples=test_files,
        code=code("inforidge.attention"),
    output:
        f"{ATTENTION_MASSES}/masses.csv",
    log:
        f"{ATTENTION_MASSES}/attention.log",
    benchmark:
        f"{ATTENTION_MASSES}/attention.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        attention=ATTENTION_JOB,
    shell:
        GPU_JOB
        + "python -m infoflow.inforidge.attention --model $(dirname {input.weights}) --examples {input.examples}"
        " --sample {params.attention[examples]} --sample-seed {params.attention[seed]} --batch-size {params.attention[batch_size]}"
        " --task {wildcards.task} --method {wildcards.method} --seed {wildcards.seed} --threads {threads} {params.model_options}"
        " --out {output} > {log} 2>&1"


rule attention_tables:
    """Attention mass per task, method, split, layer and kind over runs (two-level bootstrap CIs), the SFT ridge layer beside it."""
    input:
        masses=run_files(f"{ATTENTION_MASSES}/masses.csv", runs=ATTENTION_RUNS),
        mi=run_files(f"{RIDGE_ANALYSIS}/mi.csv", runs=ATTENTION_RIDGE_RUNS),
        code=code("report.attention_tables"),
    output:
        layers=result(
            "<results>/tables/attention_layers.csv",
            "InfoRidge",
            "Attention to signal tokens",
            "attention",
            table="attention mass per layer",
        ),
        markdown="<results>/tables/attention.md",
    log:
        "<results>/logs/attention_tables.log",
    benchmark:
        "<results>/benchmarks/attention_tables.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        statistics=config["statistics"],
    shell:
        "python -m infoflow.report.attention_tables --masses {input.masses} --mi {input.mi}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --layers {output.layers} --markdown {output.markdown} > {log} 2>&1"


rule attention_figure:
    """Attention mass to signal, noise and last tokens per layer with CI bands, the SFT ridge layer marked."""
    input:
        layers="<results>/tables/attention_layers.csv",
        code=code("report.attention_figures"),
    output:
        result(
            "<results>/figures/attention.png",
            "InfoRidge",
            "Attention to signal tokens",
            "attention",
            figure="attention mass per layer",
        ),
    log:
        "<results>/logs/attention_figure.log",
    benchmark:
        "<results>/benchmarks/attention_figure.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.attention_figures --layers {input.layers} --dpi {params.dpi}"
        " --out {output} > {log} 2>&1"
