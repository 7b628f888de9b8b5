"""One place where the Hugging Face Trainer is configured, for pretraining and post-training alike."""

import tempfile

from transformers import Trainer, TrainingArguments

TRAINER_FLAGS = {
    "--batch-size": int,
    "--learning-rate": float,
    "--epochs": float,
    "--warmup-steps": int,
    "--weight-decay": float,
    "--seed": int,
    "--threads": int,
}


def add_arguments(parser):
    """The Trainer settings and outputs that every training stage takes on its command line."""
    for flag, kind in TRAINER_FLAGS.items():
        parser.add_argument(flag, type=kind, required=True)
    parser.add_argument("--out", required=True, help="model folder")
    parser.add_argument("--history", required=True, help="JSON file of the logged training losses")


def train(model, train_set, args, *, scheduler, collator=None, logging_steps=10):
    """Train `model` in place on `train_set` with the settings in `args`; return the logged losses.

    Trainer checkpoints go to a scratch folder: the stage's outputs are the saved model and the
    loss history only.
    """
    with tempfile.TemporaryDirectory() as scratch:
        training_args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            num_train_epochs=args.epochs,
            warmup_steps=args.warmup_steps,
            weight_decay=args.weight_decay,
            lr_scheduler_type=scheduler,
            max_grad_norm=1.0,
            logging_steps=logging_steps,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=args.seed,
            remove_unused_columns=False,
        )
        trainer = Trainer(model=model.train(), args=training_args, train_dataset=train_set, data_collator=collator)
        trainer.train()
    model.eval()
    return [entry for entry in trainer.state.log_history if "loss" in entry]
