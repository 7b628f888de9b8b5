# Memory-vector surrogates of the analysed task's base model (InfoSteer Sec. 4.3).
SURROGATE_FILES = f"<world>/base/surrogates-{stage_keys(SURROGATES['task'])['surrogates']}"
# The knowledge world's facts name the kinds of tokens the vectors promote (names, cities, ...).
SURROGATE_FACTS = ["<world>/data/knowledge/facts.csv"] if "knowledge" in TASKS else []


rule memory_surrogates:
    """softmax(v_i W_decode) of every memory vector of the base model: entropy, specialisation, top tokens."""
    input:
        base=base_model_files(SURROGATES["task"]),
        code=code("infosteer.surrogates"),
    output:
        surrogates="<world>/base/surrogates-{surrogates}/surrogates.parquet",
        vocabulary="<world>/base/surrogates-{surrogates}/vocabulary.csv",
    log:
        "<world>/base/surrogates-{surrogates}/memory_surrogates.log",
    benchmark:
        "<world>/base/surrogates-{surrogates}/memory_surrogates.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=1,
    params:
        model_options=BASE_MODEL_OPTIONS,
        base_model=base_model_arg,
        surrogates=SURROGATES_JOB,
        final_norm=str(SURROGATES["final_norm"]).lower(),
    shell:
        GPU_JOB
        + "python -m infoflow.infosteer.surrogates --model {params.base_model:q} --top-k {params.surrogates[top_k]}"
        " --final-norm {params.final_norm} --threads {threads} {params.model_options}"
        " --out {output.surrogates} --vocabulary {output.vocabulary} > {log} 2>&1"


rule surrogate_tables:
    """The most specialised memory vectors per layer with their top tokens, and the kinds of tokens they promote."""
    input:
        surrogates=f"{SURROGATE_FILES}/surrogates.parquet",
        vocabulary=f"{SURROGATE_FILES}/vocabulary.csv",
        facts=SURROGATE_FACTS,
        code=code("report.surrogate_tables"),
    output:
        vectors=result(
            "<results>/tables/surrogates.csv",
            "InfoSteer",
            "Memory-vector surrogates",
            "surrogates",
            table="most specialised vectors",
        ),
        categories=result(
            "<results>/tables/surrogate_categories.csv",
            "InfoSteer",
            "Memory-vector surrogates",
            "surrogates",
            table="top tokens by kind",
        ),
        markdown="<results>/tables/surrogates.md",
    log:
        "<results>/logs/surrogate_tables.log",
    benchmark:
        "<results>/benchmarks/surrogate_tables.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        top_vectors=SURROGATES["top_vectors"],
        facts=lambda w, input: f"--facts {input.facts}" if input.facts else "",
    shell:
        "python -m infoflow.report.surrogate_tables --surrogates {input.surrogates} --vocabulary {input.vocabulary}"
        " {params.facts} --top-vectors {params.top_vectors} --vectors-csv {output.vectors}"
        " --categories-csv {output.categories} --markdown {output.markdown} > {log} 2>&1"


rule surrogate_figure:
    """Per layer and kind of token, how often a kind is among the memory vectors' top tokens against the vocabulary."""
    input:
        categories="<results>/tables/surrogate_categories.csv",
        code=code("report.surrogate_figures"),
    output:
        result(
            "<results>/figures/surrogates.png",
            "InfoSteer",
            "Memory-vector surrogates",
            "surrogates",
            figure="top tokens by kind",
        ),
    log:
        "<results>/logs/surrogate_figure.log",
    benchmark:
        "<results>/benchmarks/surrogate_figure.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.surrogate_figures --categories {input.categories} --dpi {params.dpi}"
        " --figure {output} > {log} 2>&1"
