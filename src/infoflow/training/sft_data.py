"""Prompt/answer examples as token ids with the loss on the answer only, and their padding collator."""

import torch

IGNORE_INDEX = -100  # the label the Hugging Face loss skips


def encode(tokenizer, prompt, answer, max_length=None):
    """Token ids of prompt + answer + EOS, with labels on the answer and EOS only; beyond
    `max_length` tokens the start of the prompt is cut, so the answer is always kept."""
    prompt_ids = tokenizer(prompt).input_ids
    answer_ids = tokenizer(" " + answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    input_ids, labels = prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    if max_length:
        input_ids, labels = input_ids[-max_length:], labels[-max_length:]
    return {"input_ids": input_ids, "labels": labels}


class PadCollator:
    """Right-pad a batch: pad ids for inputs, IGNORE_INDEX for labels, zeros in the attention mask."""

    def __init__(self, pad_token_id):
        self.pad_token_id = pad_token_id

    def __call__(self, features):
        width = max(len(f["input_ids"]) for f in features)

        def padded(key, value):
            return torch.tensor([f[key] + [value] * (width - len(f[key])) for f in features])

        mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features])
        return {"input_ids": padded("input_ids", self.pad_token_id), "labels": padded("labels", IGNORE_INDEX), "attention_mask": mask}
