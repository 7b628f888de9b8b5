"""infoflow: a reproducible pipeline for InfoSteer and InfoRidge on language models."""
