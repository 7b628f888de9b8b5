FLUX = config["flux"]


rule token_flux:
    """Greedy responses of one post-trained model and the key entropy of every response token, to Parquet."""
    input:
        weights="results/runs/{task}/{method}/seed{seed}/model/model.safetensors",
        prompts=f"results/data/{FLUX['task']}/{FLUX['prompts']}.jsonl",
        code=code("flux", "extract", "activations", "token_classes", "parquet", "models", "evaluate", "steer", "keys"),
    output:
        "results/runs/{task}/{method}/seed{seed}/flux/tokens.parquet",
    params:
        flux=FLUX,
    log:
        "results/logs/token_flux/{task}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/token_flux/{task}/{method}/seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=1,
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m infoflow.flux --model $(dirname {input.weights}) --prompts {input.prompts}"
        " --sample {params.flux[examples]} --sample-seed {params.flux[seed]} --max-new-tokens {params.flux[max_new_tokens]}"
        " --batch-size {params.flux[batch_size]} --normalization {params.flux[normalization]}"
        " --task {wildcards.task} --method {wildcards.method} --seed {wildcards.seed} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule flux_tables:
    """Flux per token class and method (bootstrap CIs, paired comparison with SFT), per-layer profiles, HTML rendering."""
    input:
        tokens=run_files("results/runs/{task}/{method}/seed{seed}/flux/tokens.parquet", runs=FLUX_RUNS),
        prompts=f"results/data/{FLUX['task']}/{FLUX['prompts']}.jsonl",
        code=code("flux_report", "token_classes", "parquet", "figures", "tables", "stats"),
    output:
        classes="results/tables/flux_classes.csv",
        comparison="results/tables/flux_vs_sft.csv",
        layers="results/tables/flux_layers.csv",
        markdown="results/tables/flux.md",
        html=report("results/flux.html", category="InfoSteer", caption="../report/flux.rst"),
    params:
        flux=FLUX,
        statistics=config["statistics"],
    log:
        "results/logs/flux_tables.log",
    benchmark:
        "results/benchmarks/flux_tables.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m infoflow.flux_report tables --tokens {input.tokens} --prompts {input.prompts}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --render-prompts {params.flux[render_prompts]} --classes {output.classes} --comparison {output.comparison}"
        " --layers {output.layers} --markdown {output.markdown} --html {output.html} > {log} 2>&1"


rule flux_figures:
    """Bars of flux per class and method; the first responses coloured by flux."""
    input:
        tokens=run_files("results/runs/{task}/{method}/seed{seed}/flux/tokens.parquet", runs=FLUX_RUNS),
        classes="results/tables/flux_classes.csv",
        code=code("flux_report", "token_classes", "parquet", "figures", "tables", "stats"),
    output:
        examples=report("results/figures/flux_examples.png", category="InfoSteer", caption="../report/flux.rst"),
        classes=report("results/figures/flux_classes.png", category="InfoSteer", caption="../report/flux.rst"),
    params:
        # The figure shows the first few of the HTML page's prompts.
        render_prompts=min(FLUX["render_prompts"], 3),
        dpi=config["figures"]["dpi"],
    log:
        "results/logs/flux_figures.log",
    benchmark:
        "results/benchmarks/flux_figures.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m infoflow.flux_report figures --tokens {input.tokens} --classes {input.classes}"
        " --render-prompts {params.render_prompts} --dpi {params.dpi}"
        " --examples-figure {output.examples} --classes-figure {output.classes} > {log} 2>&1"
