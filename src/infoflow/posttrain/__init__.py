"""The post-training stage: fine-tune with one of the compared methods (SFT, LoRA, or an InfoSteer
steering) and evaluate with the steering kept on where asked. The one package that composes
training with infosteer.
"""
