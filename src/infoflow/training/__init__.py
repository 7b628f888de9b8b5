"""Models and their training: loading and saving, the Trainer wrapper, where the decoder layers and
FFN keys are, pretraining the base model, LoRA, SFT examples and greedy decoding. Imports world
and the root helpers.
"""
