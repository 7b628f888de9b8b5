"""The synthetic worlds (knowledge world, modular task), the tokenizer over them, token classes,
and the public data sets read into the same example format. Imports only the root helpers.
"""
