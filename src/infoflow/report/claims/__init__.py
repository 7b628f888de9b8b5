"""The papers' claims checked against this run (see infoflow.report.claims.check):

  verdicts   the shared core: Estimate, Part, Claim, the verdict rules, a part's power (MDE) and the number formats;
  infosteer  InfoSteer's claims (1-7): accuracy against SFT and the base model, key shift, flux;
  inforidge  InfoRidge's claims (8-12): the ridge layer, early exit, residual scaling, kernels;
  multitoken  InfoRidge's multi-token claim (15): information rises with the decoding step, same layer profile;
  attention  InfoRidge's claim 13: attention to signal tokens peaks inside and collapses in the final layer;
  preconditions  what a run must have for a claim to test the paper: thresholds, measurements, not applicable;
  check      the command (`python -m infoflow.report.claims`): every claim, to claims.md and claims.csv, and
             every judged part of each, as numbers, to claims_parts.csv (the effect map reads it).
"""
