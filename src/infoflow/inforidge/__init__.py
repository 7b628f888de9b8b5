"""InfoRidge (arXiv 2507.05387): activation extraction to Parquet, the matrix-based Renyi MI
estimator, the per-layer ridge analysis with early exit and probes, residual scaling and kernel
checks. Imports training, world and the root helpers.
"""
