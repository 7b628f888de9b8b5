rule token_flux:
    """Greedy responses of one post-trained model and the key entropy of every response token, to Parquet."""
    input:
        weights=f"{CHAIN}/model/model.safetensors",
        method=f"{CHAIN}/model/method.json",
        prompts=data_file(FLUX["task"], FLUX["prompts"]),
        code=code("infosteer.flux"),
    output:
        f"{TOKEN_FLUX}/tokens.parquet",
    log:
        f"{TOKEN_FLUX}/token_flux.log",
    benchmark:
        f"{TOKEN_FLUX}/token_flux.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        flux=FLUX_JOB,
    shell:
        GPU_JOB
        + "python -m infoflow.infosteer.flux --model $(dirname {input.weights}) --prompts {input.prompts}"
        " --sample {params.flux[examples]} --sample-seed {params.flux[seed]} --max-new-tokens {params.flux[max_new_tokens]}"
        " --batch-size {params.flux[batch_size]} --normalization {params.flux[normalization]}"
        " --task {wildcards.task} --method {wildcards.method} --seed {wildcards.seed} --threads {threads} {params.model_options}"
        " --out {output} > {log} 2>&1"


rule flux_tables:
    """Flux per token class and method (bootstrap CIs, paired comparison with SFT), per-layer profiles, HTML rendering."""
    input:
        tokens=run_files(f"{TOKEN_FLUX}/tokens.parquet", runs=FLUX_RUNS),
        prompts=data_file(FLUX["task"], FLUX["prompts"]),
        code=code("report.flux_tables"),
    output:
        classes=result(
            "<results>/tables/flux_classes.csv",
            "InfoSteer",
            "Token flux",
            "flux",
            table="flux per class",
        ),
        comparison=result(
            "<results>/tables/flux_vs_sft.csv",
            "InfoSteer",
            "Token flux",
            "flux",
            table="flux vs SFT",
        ),
        layers=result(
            "<results>/tables/flux_layers.csv",
            "InfoSteer",
            "Token flux",
            "flux",
            table="flux per layer",
        ),
        markdown="<results>/tables/flux.md",
        html=result(
            "<results>/flux.html",
            "InfoSteer",
            "Token flux",
            "flux",
            table="responses coloured by flux",
        ),
    log:
        "<results>/logs/flux_tables.log",
    benchmark:
        "<results>/benchmarks/flux_tables.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        flux=FLUX,
        statistics=config["statistics"],
    shell:
        "python -m infoflow.report.flux_tables --tokens {input.tokens} --prompts {input.prompts}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --render-prompts {params.flux[render_prompts]} --classes {output.classes} --comparison {output.comparison}"
        " --layers {output.layers} --markdown {output.markdown} --html {output.html} > {log} 2>&1"


rule flux_figures:
    """Bars of flux per class and method; the first responses coloured by flux."""
    input:
        tokens=run_files(f"{TOKEN_FLUX}/tokens.parquet", runs=FLUX_RUNS),
        classes="<results>/tables/flux_classes.csv",
        code=code("report.flux_figures"),
    output:
        examples=result(
            "<results>/figures/flux_examples.png",
            "InfoSteer",
            "Token flux",
            "flux",
            figure="example responses",
        ),
        classes=result(
            "<results>/figures/flux_classes.png",
            "InfoSteer",
            "Token flux",
            "flux",
            figure="flux per class",
        ),
    log:
        "<results>/logs/flux_figures.log",
    benchmark:
        "<results>/benchmarks/flux_figures.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        # The figure shows the first few of the HTML page's prompts.
        render_prompts=min(FLUX["render_prompts"], 3),
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.flux_figures --tokens {input.tokens} --classes {input.classes}"
        " --render-prompts {params.render_prompts} --dpi {params.dpi}"
        " --examples-figure {output.examples} --classes-figure {output.classes} > {log} 2>&1"
