"""The trackers a run's metrics go to beside ``metrics.jsonl``, each a TorchRL logger
(``torchrl.record.loggers``): TensorBoard, CSV, Weights & Biases and MLflow (``log.backends``).

Each gets the run's configuration as hyper-parameters and every step's scalars at that step;
W&B and MLflow also get the step's rollout samples as a table, TensorBoard as text. Files:

* ``tensorboard/``: TensorBoard's event files;
* ``csv/scalars/NAME.csv``: ``step,value`` rows, one file per metric (TorchRL's ``CSVLogger``);
* ``wandb/``: W&B's run files (offline runs there until ``wandb sync``);
* ``mlflow.db`` and ``mlflow-artifacts/``: MLflow's local store (unless ``log.mlflow_tracking_uri``);
* ``trackers.json``: the W&B and MLflow run ids, which a resumed run continues.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from torchrl.record.loggers import CSVLogger, Logger, TensorboardLogger
from torchrl.record.loggers.mlflow import MLFlowLogger
from torchrl.record.loggers.wandb import WandbLogger

from orz_rl.config import LogConfig

#: The backends that need an optional package of their name (``pip install 'orz-rl[trackers]'``).
OPTIONAL = ("wandb", "mlflow")
#: MLflow steps of one artifact table: ``log_table`` appends by rewriting the file.
MLFLOW_TABLE_STEPS = 100
_SAMPLE_COLUMNS = ("prompt", "response", "reward")


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


class _MLflow(MLFlowLogger):
    """TorchRL's MLflow logger, continuing the run ``run_id`` when given, and ending its run on close."""

    def __init__(
        self, uri: str, experiment: str, name: str, run_id: str | None, artifacts: str | None
    ) -> None:
        self._run, self._name, self._artifacts = run_id, name, artifacts
        # log_table reads its file back at every step, with a download bar each time.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        super().__init__(exp_name=experiment, tracking_uri=uri)

    def _create_experiment(self):
        import mlflow
        from mlflow.exceptions import MlflowException

        if self._run is not None:
            try:
                run = mlflow.get_run(self._run)
            except MlflowException as e:
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
        # TorchRL's imports omegaconf, which orz-rl has no use for.
        import mlflow

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
            self._loggers["mlflow"] = _MLflow(uri, cfg.project, name, ids.get("mlflow"), artifacts)
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
        ids_path.write_text(json.dumps(ids) + "\n")

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
        path.write_text("".join(kept))


def _markdown(samples: list[dict]) -> str:
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", "<br>")  # noqa: E731
    rows = [f"| {cell(s['prompt'])} | {cell(s['response'])} | {s['reward']} |" for s in samples]
    return "\n".join(["| prompt | response | reward |", "|---|---|---|", *rows])
