"""The math reward of a whole rollout batch, in worker processes with a time limit each.

A policy in training writes strings that make symbolic checkers hang (huge
powers, endless nesting, megabytes of digits), and one hung check must never
stall a step. :class:`MathGrader` therefore sends every comparison that needs
``math-verify`` to a pool of worker processes (``pebble``'s, which kills and
replaces a worker whose task runs past its time limit, and replaces one that
crashes); signals cannot do this in threads, and an alarm does not interrupt a
long C-level computation such as ``9**9**9**9``. A comparison that times out or
fails scores 0 and is counted.

Work that needs no checker stays in this process: extraction, the ORZ stop
rule, an answer over :data:`MAX_ANSWER_CHARS`, exact matches after
normalisation and option letters. Identical ``(answer, truth)`` pairs (ORZ
samples 64 responses per prompt) are checked once.

:meth:`MathGrader.equivalent` asks the same question of two answers (is ``a`` the answer
``b``?) under the same limits, for maj@k's vote over equal answers
(:func:`orz_rl.tools.pass_at_k.pool_answers`).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout

import torch
from pebble import ProcessPool

from orz_rl.rewards.math_answers import answers_match, extract_answer, quick_verdict

#: No ORZ ground truth is longer than 53 characters (MATH500's longest); an answer
#: 20x longer than any truth is wrong, and parsing it is what hostile strings exploit.
MAX_ANSWER_CHARS = 1000

Choices = tuple[tuple[str, str], ...]

#: The counts of :attr:`MathGrader.last_stats`, each logged per step as ``grader/<name>``.
STAT_NAMES = (
    "checked",
    "quick",
    "timeouts",
    "failures",
    "restarts",
    "oversized",
    "malformed",
    "no_answer",
    "cut",
)

#: No answer contains NUL or other control characters, lone surrogates (invalid
#: UTF-8) or TeX definitions (\def, \newcommand... macro bombs), and math-verify's
#: lenient extraction would read a number beside them.
MALFORMED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]"
    r"|\\(?:[egx]?def|(?:re)?newcommand|providecommand|let|catcode|csname|input|include|write)(?![a-zA-Z])"
)


#: One comparison of each kind the checker meets, with its verdict: the first of a kind pays
#: for sympy's lazy imports and caches (0.4 s for a fraction, then 0.09 s for a polynomial,
#: 0.03 s for a root, 0.1 s for a word; 0.003-0.03 s each after), which a worker should pay
#: before the first batch, not inside it.
WARM_UP_CHECKS = (
    ("1/2", "\\frac{1}{2}", True),
    ("x^2+1", "1+x^2", True),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", True),
    ("5+0", "5", True),
    ("An", "5", False),
)


def warm_up() -> bool:
    """Run :data:`WARM_UP_CHECKS` (in a worker) and say whether each gave its verdict."""
    return all(answers_match(answer, truth) == verdict for answer, truth, verdict in WARM_UP_CHECKS)


def _unfit(answer: str, stats: Counter[str]) -> bool:
    """Whether ``answer`` is wrong unread: over :data:`MAX_ANSWER_CHARS` or :data:`MALFORMED`
    (counted in ``stats``); parsing such strings is what hostile answers exploit."""
    if len(answer) > MAX_ANSWER_CHARS:
        stats["oversized"] += 1
        return True
    if MALFORMED.search(answer):
        stats["malformed"] += 1
        return True
    return False


class MathGrader:
    """Scores batches of responses with ORZ's rule; ``math-verify`` runs in a process pool.

    Args:
        workers: worker processes (each checks one pair at a time).
        timeout: seconds one comparison may take before its worker is killed.

    Attributes:
        last_stats: counts of the latest :meth:`score` or :meth:`equivalent` call:
            ``checked`` (sent to a worker), ``quick`` (decided here), ``timeouts``, ``failures`` (a worker
            crashed or the checker raised), ``restarts`` (of the whole pool, which
            pebble gives up on when a worker dies idle), ``oversized`` (over
            :data:`MAX_ANSWER_CHARS`), ``malformed`` (control characters, lone
            surrogates, TeX definitions), ``no_answer`` (no box in an answer
            block), ``cut`` (no stop); the last two are 0 after :meth:`equivalent`.
    """

    def __init__(self, workers: int = 2, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.workers = workers
        self._pool = self._start_pool()
        self.last_stats: Counter[str] = Counter()

    def _start_pool(self) -> ProcessPool:
        # spawn, not fork: the trainer's process holds torch and vLLM threads.
        pool = ProcessPool(max_workers=self.workers, context=multiprocessing.get_context("spawn"))
        # Start the workers and their imports (sympy, math-verify: ~1 s) now, in the
        # background, rather than inside the first step that needs a check.
        for _ in range(self.workers):
            pool.schedule(warm_up)
        return pool

    def _schedule(self, pair: tuple[str, str, Choices], stats: Counter[str]):
        try:
            return self._pool.schedule(answers_match, args=pair, timeout=self.timeout)
        except RuntimeError:
            # pebble declares the whole pool broken when a worker dies with no task
            # running (e.g. killed while idle): start a fresh one.
            stats["restarts"] += 1
            self._pool.stop()
            self._pool = self._start_pool()
            return self._pool.schedule(answers_match, args=pair, timeout=self.timeout)

    def score(
        self,
        responses: Sequence[str],
        stopped: Sequence[bool],
        truths: Sequence[str],
        choices: Sequence[Choices] | None = None,
    ) -> torch.Tensor:
        """The reward (0. or 1.) of each response, aligned with ``responses``."""
        choices = choices if choices is not None else [()] * len(responses)
        stats: Counter[str] = Counter(dict.fromkeys(STAT_NAMES, 0))
        rewards = torch.zeros(len(responses))
        pending: dict[tuple[str, str, Choices], list[int]] = {}
        for i, (response, stop, truth, options) in enumerate(
            zip(responses, stopped, truths, choices, strict=True)
        ):
            if not stop:
                stats["cut"] += 1
                continue
            answer = extract_answer(response)
            if answer is None:
                stats["no_answer"] += 1
                continue
            if _unfit(answer, stats):
                continue
            verdict = quick_verdict(answer, truth, options)
            if verdict is not None:
                stats["quick"] += 1
                rewards[i] = float(verdict)
                continue
            pending.setdefault((answer, truth, options), []).append(i)
        for pair, verdict in self._check(pending, stats).items():
            for i in pending[pair]:
                rewards[i] = float(verdict)
        self.last_stats = stats
        return rewards

    def equivalent(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Whether each ``(a, b)`` is the same answer by :func:`answers_match` (``b`` in the truth's
        place), aligned with ``pairs``: what maj@k needs to pool the votes of equal answers.

        Decided as :meth:`score` decides an answer against its truth: here where
        :func:`quick_verdict` can, else in a worker under the time limit, each distinct pair
        once; a pair that times out or fails, or with a side over :data:`MAX_ANSWER_CHARS` or
        :data:`MALFORMED`, is not equal. Counted in :attr:`last_stats`.
        """
        stats: Counter[str] = Counter(dict.fromkeys(STAT_NAMES, 0))
        same = [False] * len(pairs)
        pending: dict[tuple[str, str, Choices], list[int]] = {}
        for i, (a, b) in enumerate(pairs):
            if _unfit(a, stats) or _unfit(b, stats):
                continue
            verdict = quick_verdict(a, b)
            if verdict is not None:
                stats["quick"] += 1
                same[i] = verdict
                continue
            pending.setdefault((a, b, ()), []).append(i)
        for pair, verdict in self._check(pending, stats).items():
            for i in pending[pair]:
                same[i] = verdict
        self.last_stats = stats
        return same

    def _check(
        self, pairs: Iterable[tuple[str, str, Choices]], stats: Counter[str]
    ) -> dict[tuple[str, str, Choices], bool]:
        """:func:`answers_match` of each pair in the pool, all scheduled before any is awaited;
        a timeout or failure is ``False`` and counted."""
        futures = {pair: self._schedule(pair, stats) for pair in pairs}
        verdicts: dict[tuple[str, str, Choices], bool] = {}
        for pair, future in futures.items():
            stats["checked"] += 1
            try:
                verdicts[pair] = bool(future.result())
            except FutureTimeout:
                stats["timeouts"] += 1
                verdicts[pair] = False
            except Exception:  # a crashed worker (ProcessExpired) or a checker error: a wrong answer
                stats["failures"] += 1
                verdicts[pair] = False
        return verdicts

    def worker_pids(self) -> list[int]:
        """The worker processes alive now (pebble 5.2 keeps them in its pool manager)."""
        workers = self._pool._pool_manager.worker_manager.workers
        return [pid for pid, process in workers.items() if process.is_alive()]

    def close(self) -> None:
        """Stop the workers (a hung one is killed)."""
        self._pool.stop()
        self._pool.join()

    def __enter__(self) -> MathGrader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default: MathGrader | None = None


def default_grader() -> MathGrader:
    """A process-wide grader (one worker per CPU core, 5 s limit), started on first use."""
    global _default
    if _default is None:
        _default = MathGrader(workers=os.cpu_count() or 1)
        atexit.register(_default.close)
    return _default
