"""orz-rl: Open-Reasoner-Zero on TorchRL.

The package follows the pipeline, each layer importing only those below it
(``make lint`` checks it): ``problems`` -> ``rewards`` -> ``envs`` (and ``models``)
-> ``runtime`` -> ``rollout`` and ``ppo`` -> ``tools`` -> ``trainer`` -> ``cli``.
"""
