FLUX = config["flux"]


rule token_flux:
    """Greedy responses of one post-trained model and the key entropy of every response token, to Parquet."""
    input:
        weights="results/runs/{task}/{method}/seed{seed}/model/model.safetensors",
        prompts=f"results/data/{FLUX['task']}/{FLUX['prompts']}.jsonl",
        code=code("flux", "token_classes", "parquet", "models", "evaluate", "steer", "keys"),
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


rule flux_report:
    """Flux per token class and method (bootstrap CIs, paired comparison with SFT), per-layer profiles, rendering."""
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
        examples=report("results/figures/flux_examples.png", category="InfoSteer", caption="../report/flux.rst"),
        classes_figure=report("results/figures/flux_classes.png", category="InfoSteer", caption="../report/flux.rst"),
    params:
        flux=FLUX,
        statistics=config["statistics"],
        dpi=config["figures"]["dpi"],
    log:
        "results/logs/flux_report.log",
    benchmark:
        "results/benchmarks/flux_report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m infoflow.flux_report --tokens {input.tokens} --prompts {input.prompts}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --render-prompts {params.flux[render_prompts]} --dpi {params.dpi}"
        " --classes {output.classes} --comparison {output.comparison} --layers {output.layers}"
        " --markdown {output.markdown} --html {output.html} --examples-figure {output.examples}"
        " --classes-figure {output.classes_figure} > {log} 2>&1"
