"""orz-rl's reward environments (installed as ``orz_rl.envs``)."""
