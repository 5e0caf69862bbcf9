"""v05: generalist-value-model priors fused with sparse rollouts for RLVR policy-gradient baselines."""

__version__ = "0.1.0"
