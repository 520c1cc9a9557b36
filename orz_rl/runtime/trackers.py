"""The trackers a run's metrics go to beside ``metrics.jsonl``, each a TorchRL logger
(``torchrl.record.loggers``): TensorBoard, CSV, Weights & Biases and MLflow (``log.backends``).

Each gets the run's configuration as hyper-parameters and every step's scalars at that step;
W&B and MLflow also get the step's rollout samples as a table, TensorBoard as text. Files:

* ``tensorboard/``: TensorBoard's event files;
* ``csv/scalars/NAME.csv``: ``step,value`` rows, one file per metric (TorchRL's ``CSVLogger``);
* ``wandb/``: W&B's run files (offline runs there until ``wandb sync``);
* ``mlflow.db`` and ``mlflow-artifacts/``: MLflow's local store (unless ``log.mlflow_tracking_uri``);
* ``trackers.json``: the W&B and MLflow run ids, which a resumed run continues.

MLflow's every HTTP request waits ``log.server_timeout`` at most, tried once
(:func:`bound_mlflow_http`): a server that does not answer stops the run at its start with one
error, and costs one counted step later.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sqlite3
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from torchrl.record.loggers import CSVLogger, Logger, TensorboardLogger
from torchrl.record.loggers.mlflow import MLFlowLogger
from torchrl.record.loggers.wandb import WandbLogger

from orz_rl.config import LogConfig
from orz_rl.runtime import atomic_write

#: The backends that need an optional package of their name (``pip install 'orz-rl[trackers]'``).
OPTIONAL = ("wandb", "mlflow")
#: MLflow steps of one artifact table: ``log_table`` appends by rewriting the file.
MLFLOW_TABLE_STEPS = 100
_SAMPLE_COLUMNS = ("prompt", "response", "reward")
#: MLflow's HTTP settings orz-rl set (:func:`bound_mlflow_http`), told from the user's own.
_MLFLOW_HTTP_SET: dict[str, str] = {}


def tracker_problems(cfg: LogConfig) -> list[str]:
    """What keeps ``cfg``'s backends from starting: an optional package that is not installed."""
    return [
        f"log.backends: {name} needs the {name} package (pip install 'orz-rl[trackers]')"
        for name in OPTIONAL
        if name in cfg.backends and importlib.util.find_spec(name) is None
    ]


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """``config`` with nested keys joined by dots (``ppo.lr``)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def mlflow_name(metric: str) -> str:
    """``metric`` in the characters MLflow takes (``reward/pass@8`` -> ``reward/pass_at_8``)."""
    return re.sub(r"[^\w./\- ]", "_", metric.replace("@", "_at_"))


class _TensorBoard(TensorboardLogger):
    """TorchRL's TensorBoard logger, dropping what an earlier process logged after ``purge_step - 1``."""

    def __init__(self, log_dir: Path, purge_step: int) -> None:
        self._purge_step = purge_step
        super().__init__(exp_name="tensorboard", log_dir=str(log_dir))

    def _create_experiment(self):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(os.path.join(self.log_dir, self.exp_name), purge_step=self._purge_step)

    def log_hparams(self, cfg: dict) -> None:
        # TensorBoard takes numbers, strings and booleans only.
        ok = (int, float, str, bool)
        super().log_hparams({k: v if isinstance(v, ok) else str(v) for k, v in cfg.items()})

    def log_step(self, step: int, metrics: dict[str, float], samples: list[dict]) -> None:
        self.log_metrics(metrics, step=step)
        if samples:
            self.experiment.add_text("rollout/samples", _markdown(samples), step)


class _CSV(CSVLogger):
    """TorchRL's CSV logger: ``RUN_DIR/csv/scalars/NAME.csv``."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(exp_name="csv", log_dir=str(run_dir))

    def log_step(self, step: int, metrics: dict[str, float], samples: list[dict]) -> None:
        self.log_metrics(metrics, step=step)  # the samples are in rollouts.jsonl


class _Wandb(WandbLogger):
    """TorchRL's W&B logger at the trainer's step (W&B's own ``_step``), samples as a table."""

    def log_step(self, step: int, metrics: dict[str, float], samples: list[dict]) -> None:
        import wandb

        rows = [[step, s["prompt"], s["response"], s["reward"]] for s in samples]
        table = {"rollout/samples": wandb.Table(columns=["step", *_SAMPLE_COLUMNS], data=rows)}
        self.log_metrics(metrics | (table if samples else {}), step=step, override_global_step=True)


def bound_mlflow_http(server_timeout: float) -> str:
    """Bound each of MLflow's HTTP requests by ``server_timeout`` seconds (rounded up: MLflow
    reads whole seconds) to connect and to each read of the answer, tried once: no retries, so no
    backoff between them (``MLFLOW_HTTP_REQUEST_TIMEOUT``, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``;
    MLflow's own are 120 s and 7 retries, minutes in all). A value the user set in the
    environment stands. Returns the timeout in effect and where it comes from, for a message."""
    wanted = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(server_timeout))),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    for name, value in wanted.items():
        if name not in os.environ or os.environ[name] == _MLFLOW_HTTP_SET.get(name):
            os.environ[name] = _MLFLOW_HTTP_SET[name] = value
    timeout = os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    ours = timeout == _MLFLOW_HTTP_SET.get("MLFLOW_HTTP_REQUEST_TIMEOUT")
    return f"{timeout} s ({'log.server_timeout' if ours else 'MLFLOW_HTTP_REQUEST_TIMEOUT'})"


def _shown(uri: str) -> str:
    """``uri`` without a password it may hold."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", uri)


def _contact_failure(e: BaseException, uri: str, bound: str) -> str | None:
    """``e`` (or what caused it) as a server at ``uri`` that did not answer within ``bound`` or
    could not be reached, in words; None when it is neither."""
    import requests
    import urllib3

    chain, todo = [], [e]
    while todo:  # MLflow wraps requests' error, which wraps urllib3's, which wraps the socket's
        x = todo.pop()
        if isinstance(x, BaseException) and all(x is not y for y in chain):
            chain.append(x)
            todo += [x.__cause__, x.__context__, getattr(x, "reason", None)]
    timeouts = (TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.ReadTimeoutError)
    if any(isinstance(x, timeouts) for x in chain):
        return f"the server at {_shown(uri)} did not answer within {bound}"
    refused = next((x for x in chain if isinstance(x, OSError) and x.strerror), None)
    if refused is not None:  # refused, no such host, no route
        return f"the server at {_shown(uri)} could not be reached ({refused.strerror})"
    return None


def _mlflow_failure(e: BaseException, uri: str, bound: str) -> str:
    """``e``, raised while MLflow spoke to its store at ``uri``, in one line."""
    said = _contact_failure(e, uri, bound)
    if said is not None:
        return said
    text = (getattr(e, "message", None) or str(e) or type(e).__name__).strip().splitlines()[0]
    return f"{_shown(uri)}: {text[:300]}{'...' if len(text) > 300 else ''}"


def _sqlite_problem(uri: str, timeout: float) -> str | None:
    """The SQLite file of ``uri`` and why it cannot be opened and written (None: it can, or
    ``uri`` names no SQLite file). MLflow retries such a store for about 100 s before it says."""
    if not uri.startswith("sqlite:///"):
        return None
    name = uri.removeprefix("sqlite:///").split("?")[0]
    if name in ("", ":memory:"):
        return None
    path = Path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # as MLflow does
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else f"{path.parent}: {e.strerror}"
        return f"{path} ({why})"
    if path.is_dir():
        return f"{path} (a folder)"
    try:
        with closing(sqlite3.connect(path, timeout=timeout)) as db:
            db.execute("PRAGMA schema_version")  # opens (creates) and reads the file
    except sqlite3.Error as e:
        return f"{path} ({e})"
    return None


class _MLflow(MLFlowLogger):
    """TorchRL's MLflow logger, continuing the run ``run_id`` when given, and ending its run on close.

    Its start (the run, the configuration) fails as one :class:`ValueError` naming the store; each
    request to a server that does not answer waits ``server_timeout`` seconds at most."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        name: str,
        run_id: str | None,
        artifacts: str | None,
        server_timeout: float,
    ) -> None:
        self._uri, self._run, self._name, self._artifacts = uri, run_id, name, artifacts
        # log_table reads its file back at every step, with a download bar each time.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self._bound = bound_mlflow_http(server_timeout)
        problem = _sqlite_problem(uri, server_timeout)
        if problem is not None:
            raise ValueError(
                f"log.backends: mlflow: cannot open the SQLite store {problem}; "
                "MLflow must create and write it (log.mlflow_tracking_uri names another store)"
            )
        with self._starting():
            super().__init__(exp_name=experiment, tracking_uri=uri)

    @contextmanager
    def _starting(self) -> Iterator[None]:
        """What fails in the block as one line, a ValueError (orz-rl's own pass as they are)."""
        try:
            yield
        except ValueError:
            raise
        except Exception as e:
            said = _mlflow_failure(e, self._uri, self._bound)
            raise ValueError(
                f"log.backends: mlflow: {said}; check the server and log.mlflow_tracking_uri, or "
                "leave mlflow out of log.backends (metrics.jsonl has every step)"
            ) from None

    def _create_experiment(self):
        import mlflow
        from mlflow.exceptions import MlflowException

        if self._run is not None:
            try:
                run = mlflow.get_run(self._run)
            except MlflowException as e:
                if _contact_failure(e, self._uri, self._bound) is not None:
                    raise  # the store is away, not the run
                raise ValueError(
                    f"MLflow run {self._run} (trackers.json) is not in {self.log_dir}: {e.message}; "
                    "delete trackers.json to start new tracker runs"
                ) from None
            self.id = run.info.experiment_id
            return mlflow.start_run(run_id=self._run)
        found = mlflow.get_experiment_by_name(self.exp_name)
        if found is not None:
            self.id = found.experiment_id
        else:
            self.id = mlflow.create_experiment(self.exp_name, artifact_location=self._artifacts)
        return mlflow.start_run(experiment_id=self.id, run_name=self._name)

    def log_hparams(self, cfg: dict) -> None:
        # TorchRL's imports omegaconf, which orz-rl has no use for. Called at the start only.
        import mlflow

        with self._starting():
            mlflow.log_params({k: str(v) for k, v in cfg.items()})

    def log_step(self, step: int, metrics: dict[str, float], samples: list[dict]) -> None:
        import mlflow

        self.log_metrics({mlflow_name(k): v for k, v in metrics.items()}, step=step)
        if samples:
            first = (step - 1) // MLFLOW_TABLE_STEPS * MLFLOW_TABLE_STEPS + 1
            table = {"step": [step] * len(samples)} | {c: [s[c] for s in samples] for c in _SAMPLE_COLUMNS}
            mlflow.log_table(table, artifact_file=f"rollout_samples/steps_{first:06d}.json")

    def shutdown(self, timeout: float | None = None) -> None:
        import mlflow

        super().shutdown(timeout)
        mlflow.end_run()


class Trackers:
    """The run's metrics in each of ``cfg.backends`` but jsonl (which :class:`RunLog` writes).

    A resumed run (``step > 0``) continues the W&B and MLflow runs of ``trackers.json``. Those
    already hold the steps an earlier process logged up to ``logged`` (after the checkpoint, when
    it stopped without one): they are not logged twice. TensorBoard and the CSV files drop what
    was logged after ``step`` instead, as ``metrics.jsonl`` does.

    Args:
        run_dir: the run directory.
        cfg: the backends, project and names.
        step: the last step of the checkpoint the run starts from (0: a new run).
        logged: the last step an earlier process in ``run_dir`` logged (``progress.json``).
        config: the run's configuration (:func:`~orz_rl.runtime.run_log.jsonable`).
    """

    def __init__(self, run_dir: Path, cfg: LogConfig, *, step: int, logged: int, config: dict) -> None:
        ids_path = run_dir / "trackers.json"
        ids = _read_ids(ids_path) if step > 0 else {}
        name = cfg.name or run_dir.resolve().name
        self._loggers: dict[str, Logger] = {}
        if "tensorboard" in cfg.backends:
            self._loggers["tensorboard"] = _TensorBoard(run_dir, purge_step=step + 1)
        if "csv" in cfg.backends:
            _truncate_csv(run_dir / "csv" / "scalars", step)
            self._loggers["csv"] = _CSV(run_dir)
        if "wandb" in cfg.backends:
            from wandb.errors import UsageError

            # resume="allow" (TorchRL's): the run of that id continues, or a new one starts.
            run = dict(save_dir=str(run_dir), id=ids.get("wandb"), project=cfg.project, config=config)
            try:
                self._loggers["wandb"] = _Wandb(name, **run)
            except UsageError as e:  # no API key, among others
                offline = "WANDB_MODE=offline writes the run's files only"
                raise ValueError(f"log.backends: wandb: {e} ({offline})") from None
        if "mlflow" in cfg.backends:
            local = not cfg.mlflow_tracking_uri
            uri = cfg.mlflow_tracking_uri or f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"
            artifacts = (run_dir / "mlflow-artifacts").resolve().as_uri() if local else None
            self._loggers["mlflow"] = _MLflow(
                uri, cfg.project, name, ids.get("mlflow"), artifacts, cfg.server_timeout
            )
        #: Steps each tracker failed to take (:meth:`log`).
        self.failures: dict[str, int] = {}
        #: The last step each tracker already holds.
        self._holds = {backend: logged if backend in ids else step for backend in self._loggers}
        for backend, logger in self._loggers.items():
            # W&B took the configuration at its start; MLflow keeps a continued run's parameters.
            if backend != "wandb" and (step == 0 or backend == "mlflow" and backend not in ids):
                logger.log_hparams(flatten(config))
        ids = {}
        if "wandb" in self._loggers:
            ids["wandb"] = self._loggers["wandb"].experiment.id
        if "mlflow" in self._loggers:
            ids["mlflow"] = self._loggers["mlflow"].experiment.info.run_id
        atomic_write.write_text(ids_path, json.dumps(ids) + "\n")

    def log(self, step: int, metrics: dict[str, float], samples: list[dict]) -> None:
        """Step ``step``'s scalars and its rollout samples (``prompt``, ``response``, ``reward``).

        A tracker that fails (a server away, a full disk) does not end the run: ``metrics.jsonl``
        has every step. Its first failure is a warning; :attr:`failures` counts them."""
        for backend, logger in self._loggers.items():
            if step <= self._holds[backend]:
                continue
            try:
                logger.log_step(step, metrics, samples)
            except Exception as e:
                self.failures[backend] = self.failures.get(backend, 0) + 1
                if self.failures[backend] == 1:
                    warnings.warn(
                        f"log.backends: {backend} failed at step {step} ({type(e).__name__}: {e}); "
                        "the run goes on, and metrics.jsonl has every step",
                        stacklevel=2,
                    )

    def close(self) -> None:
        for backend, logger in self._loggers.items():
            try:
                logger.shutdown()
            except Exception as e:  # what it holds is flushed or lost already; the run ends as it should
                warnings.warn(
                    f"log.backends: {backend} did not close ({type(e).__name__}: {e})", stacklevel=2
                )
        for backend, count in self.failures.items():
            warnings.warn(
                f"log.backends: {backend} missed {count} step(s); metrics.jsonl has them", stacklevel=2
            )


def _read_ids(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        ids = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e}); delete it to start new tracker runs") from None
    if not isinstance(ids, dict) or not all(isinstance(v, str) for v in ids.values()):
        raise ValueError(
            f"{path}: expected an object of run ids, got {ids!r}; delete it to start new tracker runs"
        )
    return ids


def _truncate_csv(folder: Path, step: int) -> None:
    """Keep the rows of each ``step,value`` file up to ``step`` (a torn last row goes too)."""
    for path in folder.rglob("*.csv"):
        kept = []
        for line in path.read_text().splitlines():
            first, _, value = line.partition(",")
            if first.isdigit() and value and int(first) <= step:
                kept.append(line + "\n")
        atomic_write.write_text(path, "".join(kept))


def _markdown(samples: list[dict]) -> str:
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", "<br>")  # noqa: E731
    rows = [f"| {cell(s['prompt'])} | {cell(s['response'])} | {s['reward']} |" for s in samples]
    return "\n".join(["| prompt | response | reward |", "|---|---|---|", *rows])
