# Key-region shares of every run of the analysed task.
KEY_SHIFT_RUN_SHARES = run_files(f"{KEY_SHARES}/shares.json", runs=KEY_SHIFT_RUNS)
# The base model's shares, the reference of the runs'.
BASE_KEY_SHARES = f"<world>/base/key_shift-{stage_keys(KEY_SHIFT['task'])['key_shift']}/shares.json"


rule key_thresholds:
    """The base model's 25th / 75th key percentiles per layer on the fixed prompt sample."""
    input:
        base=base_model_files(KEY_SHIFT["task"]),
        examples=data_file(KEY_SHIFT["task"], "test_id"),
        code=code("infosteer.key_shift"),
    output:
        thresholds="<world>/base/key_shift-{key_shift}/thresholds.json",
        shares="<world>/base/key_shift-{key_shift}/shares.json",
    log:
        "<world>/base/key_shift-{key_shift}/key_thresholds.log",
    benchmark:
        "<world>/base/key_shift-{key_shift}/key_thresholds.tsv"
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
        sample=KEY_SHIFT_JOB,
    shell:
        GPU_JOB
        + "python -m infoflow.infosteer.key_shift thresholds --model {params.base_model:q} --examples {input.examples}"
        " --n {params.sample[examples]} --seed {params.sample[seed]} --batch-size {params.sample[batch_size]}"
        " --threads {threads} {params.model_options} --out {output.thresholds} --shares {output.shares} > {log} 2>&1"


rule key_shares:
    """Share of one post-trained model's key coefficients in the base model's low / medium / high regions."""
    input:
        weights=f"{CHAIN}/model/model.safetensors",
        thresholds="<world>/base/key_shift-{key_shift}/thresholds.json",
        examples=data_file(KEY_SHIFT["task"], "test_id"),
        code=code("infosteer.key_shift"),
    output:
        shares=f"{KEY_SHARES}/shares.json",
    log:
        f"{KEY_SHARES}/key_shares.log",
    benchmark:
        f"{KEY_SHARES}/key_shares.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        sample=KEY_SHIFT_JOB,
    shell:
        GPU_JOB
        + "python -m infoflow.infosteer.key_shift shares --model $(dirname {input.weights}) --examples {input.examples}"
        " --n {params.sample[examples]} --seed {params.sample[seed]} --batch-size {params.sample[batch_size]}"
        " --thresholds {input.thresholds} --tags method={wildcards.method} seed={wildcards.seed}"
        " --threads {threads} {params.model_options} --out {output.shares} > {log} 2>&1"


rule key_shift_report:
    """Key-region shares per method (mean over seeds), as a table and a stacked bar figure."""
    input:
        base=BASE_KEY_SHARES,
        runs=KEY_SHIFT_RUN_SHARES,
        code=code("report.key_shift_tables") + code("report.key_shift_figures"),
    output:
        csv=result(
            "<results>/tables/key_shift.csv",
            "InfoSteer",
            "Key-distribution shift",
            "key_shift",
            table="region shares",
        ),
        markdown="<results>/tables/key_shift.md",
        figure=result(
            "<results>/figures/key_shift.png",
            "InfoSteer",
            "Key-distribution shift",
            "key_shift",
            figure="region shares",
        ),
    log:
        "<results>/logs/key_shift_report.log",
    benchmark:
        "<results>/benchmarks/key_shift_report.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.key_shift_tables --shares {input.base} {input.runs}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"
        " && python -m infoflow.report.key_shift_figures --table {output.csv} --dpi {params.dpi}"
        " --figure {output.figure} >> {log} 2>&1"
