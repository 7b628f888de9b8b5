rule evaluate:
    """Greedy decoding and exact match of one post-trained model on its ID and OOD test splits."""
    input:
        weights=f"{CHAIN}/model/model.safetensors",
        # The method the model was trained with: an at_eval intervention decodes steered.
        method=f"{CHAIN}/model/method.json",
        examples=test_files,
        code=code("posttrain.evaluate"),
    output:
        predictions=[
            run_result(
                f"{EVALUATION}/{split}.csv",
                "InfoSteer",
                "Predictions, per run",
                "predictions",
                split=split,
            )
            for split in TEST_SPLITS
        ],
        metrics=expand(f"{EVALUATION}/{{split}}.json", split=TEST_SPLITS, allow_missing=True),
    log:
        f"{EVALUATION}/evaluate.log",
    benchmark:
        f"{EVALUATION}/evaluate.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        group_by=accuracy_groups,
        evaluation=config["evaluation"],
        splits=" ".join(TEST_SPLITS),
    shell:
        GPU_JOB
        + "python -m infoflow.posttrain.evaluate --model $(dirname {input.weights}) --examples {input.examples}"
        " --splits {params.splits} --max-new-tokens {params.evaluation[max_new_tokens]}"
        " --batch-size {params.evaluation[batch_size]}"
        " --tags task={wildcards.task} method={wildcards.method} seed={wildcards.seed}"
        " --group-by {params.group_by} --threads {threads} {params.model_options} --predictions {output.predictions} --metrics {output.metrics} > {log} 2>&1"


rule evaluate_base:
    """The base model itself on one task's test splits: the reference of SFT's OOD change (InfoSteer
    Table 4), prompted with `base_evaluation.demonstrations` examples of the task's training split.
    """
    input:
        base=base_inputs,
        examples=test_files,
        # The demonstrations, and the answers of each group the format rate accepts.
        train=lambda wildcards: data_file(wildcards.task, "train"),
        code=code("posttrain.evaluate"),
    output:
        predictions=expand(
            "<world>/base/{{task}}/eval-{{base_evaluation}}/{split}.csv", split=TEST_SPLITS
        ),
        metrics=expand(
            "<world>/base/{{task}}/eval-{{base_evaluation}}/{split}.json", split=TEST_SPLITS
        ),
    log:
        "<world>/base/{task}/eval-{base_evaluation}/evaluate.log",
    benchmark:
        "<world>/base/{task}/eval-{base_evaluation}/evaluate.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=1,
    params:
        model_options=BASE_MODEL_OPTIONS,
        base_model=base_model_arg,
        group_by=accuracy_groups,
        evaluation=config["evaluation"],
        base_evaluation=config["base_evaluation"],
        splits=" ".join(TEST_SPLITS),
    shell:
        GPU_JOB
        + "python -m infoflow.posttrain.evaluate --model {params.base_model:q} --examples {input.examples}"
        " --splits {params.splits} --max-new-tokens {params.evaluation[max_new_tokens]}"
        " --batch-size {params.evaluation[batch_size]} --tags task={wildcards.task} method=base seed=0"
        " --demonstrations {params.base_evaluation[demonstrations]} --demonstration-examples {input.train}"
        " --demonstration-seed {params.base_evaluation[demonstration_seed]}"
        " --group-by {params.group_by} --threads {threads} {params.model_options}"
        " --predictions {output.predictions} --metrics {output.metrics} > {log} 2>&1"
