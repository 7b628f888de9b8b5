"""One place where the Hugging Face Trainer is configured, for pretraining and post-training alike."""

import tempfile

from transformers import Trainer, TrainingArguments


def train(model, train_set, *, batch_size, learning_rate, epochs, warmup_steps, weight_decay, scheduler, seed, collator=None, logging_steps=10):
    """Train `model` in place on `train_set` and return the logged losses (list of dicts).

    Trainer checkpoints go to a scratch folder: the pipeline's outputs are the saved model and the
    loss history only.
    """
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            num_train_epochs=epochs,
            warmup_steps=warmup_steps,
            weight_decay=weight_decay,
            lr_scheduler_type=scheduler,
            max_grad_norm=1.0,
            logging_steps=logging_steps,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=seed,
            remove_unused_columns=False,
        )
        trainer = Trainer(model=model.train(), args=args, train_dataset=train_set, data_collator=collator)
        trainer.train()
    model.eval()
    return [entry for entry in trainer.state.log_history if "loss" in entry]
