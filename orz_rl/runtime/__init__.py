"""Runtime: ranks, checkpoints, run logs, preflight checks, signals and clocks of a training run."""
