"""orz-rl: Open-Reasoner-Zero on TorchRL."""

import os

# vLLM logs every engine detail at INFO, and TorchRL imports it early; orz-rl's
# output keeps vLLM's warnings only. A VLLM_LOGGING_LEVEL set by the user wins.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
