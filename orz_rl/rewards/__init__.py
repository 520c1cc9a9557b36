"""Rewards by rule: the math answer checker, the code judge and its sandbox, and the workers they run in."""
