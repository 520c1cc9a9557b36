"""``orz-rl data``: build, clean, decontaminate and grade a training set by difficulty.

Each step reads a file in ORZ's training format and writes one, with a JSON report of what it
kept and dropped and why (:mod:`~orz_rl.curation.items`): ``import`` (:mod:`.importing`), ``dedup``
(:mod:`.dedup`), ``decontaminate`` (:mod:`.decontaminate`), ``verifiable`` (:mod:`.verifiable`),
``difficulty`` and ``select`` (:mod:`.difficulty`), ``stats`` (:mod:`.stats`); ``docs/data.md``
chains them.
"""
