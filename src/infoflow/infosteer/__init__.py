"""InfoSteer (arXiv 2507.05158): steering of FFN key coefficients (intervention and entropy
regulariser), the key-distribution shift and the per-token information flux. Imports training,
world and the root helpers.
"""
