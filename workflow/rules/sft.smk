rule finetune:
    """Post-train the base model on one task with one method and seed."""
    input:
        base=base_inputs,
        train=lambda w: data_file(w.task, "train"),
        code=code("posttrain.finetune"),
    output:
        weights=f"{CHAIN}/model/model.safetensors",
        config=f"{CHAIN}/model/config.json",
        method=f"{CHAIN}/model/method.json",
        history=f"{CHAIN}/train_history.json",
        checkpoints=keep_or_temp(
            expand(f"{CHAIN}/checkpoints/point{{point}}", point=POINTS, allow_missing=True)
        ),
    log:
        f"{CHAIN}/finetune.log",
    benchmark:
        f"{CHAIN}/finetune.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: DEVICES_PER_JOB
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=DEVICES_PER_JOB,
    params:
        model_options=BASE_MODEL_OPTIONS,
        base_model=base_model_arg,
        at_eval=lambda w: "--at-eval" if method_entry(w).get("at_eval") else "",
        method=lambda w: without(method_entry(w), "tasks", "run_seeds"),
        sft=lambda w: sft_settings(w.task),
        checkpointing="--gradient-checkpointing" if config["sft"]["gradient_checkpointing"] else "",
        seed=lambda w: int(w.seed),
        method_params=lambda w: method_args(method_entry(w)),
        checkpoints=config["inforidge"]["checkpoints"],
        resume_every=config["resume_every_steps"],
        run_dir=lambda w, output: os.path.dirname(output.history),
        threads_per_process=lambda w, threads: max(1, threads // DEVICES_PER_JOB),
    shell:
        GPU_JOB
        + LAUNCH
        + " -m infoflow.posttrain.finetune --model {params.base_model:q} --train {input.train}"
        " --method {params.method[kind]} --method-params {params.method_params} {params.at_eval}"
        " --learning-rate {params.sft[learning_rate]}"
        " --epochs {params.sft[epochs]} --batch-size {params.sft[batch_size]}"
        " --gradient-accumulation-steps {params.sft[gradient_accumulation_steps]} {params.checkpointing}"
        " --precision {params.sft[precision]}"
        " --max-length {params.sft[max_length]}"
        " --warmup-steps {params.sft[warmup_steps]} --weight-decay {params.sft[weight_decay]}"
        " --sharding {params.sft[sharding]}"
        " --seed {params.seed} --threads {params.threads_per_process} {params.model_options}"
        " --checkpoints {params.checkpoints} --checkpoint-dir {params.run_dir}/checkpoints"
        " --resume-dir {params.run_dir}/resume"
        " --resume-every {params.resume_every}"
        " --out $(dirname {output.weights}) --history {output.history} > {log} 2>&1"
