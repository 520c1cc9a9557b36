"""A tracker whose store does not answer or cannot be written stops the run's start within a
bounded time with one line naming the backend, the store and the bound (``log.server_timeout``),
as the other tracker failures do, instead of MLflow's minutes of silent retries."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from orz_rl.config import LogConfig
from orz_rl.runtime.trackers import Trackers

pytest.importorskip("mlflow")

#: What the MLflow tracker sets in the environment (and what a user may have set there).
MLFLOW_ENV = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    "MLFLOW_TRACKING_URI",
)


@pytest.fixture(autouse=True)
def clean_mlflow_state(monkeypatch):
    """Each test starts without MLflow's settings in the environment, and leaves none behind."""
    import mlflow.tracking._tracking_service.utils as tracking

    for name in MLFLOW_ENV:
        monkeypatch.setenv(name, "")  # so that teardown restores what was there, or nothing
        monkeypatch.delenv(name)
    # mlflow.set_tracking_uri keeps the URI for the process too.
    monkeypatch.setattr(tracking, "_tracking_uri", getattr(tracking, "_tracking_uri", None), raising=False)


@pytest.fixture
def silent_server():
    """``http://127.0.0.1:PORT`` of a server that takes every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    held, stop = [], threading.Event()

    def take():
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # kept open, never read from or written to
            except TimeoutError:
                continue

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def start_mlflow(run_dir, uri="", server_timeout=2.0) -> tuple[str, float]:
    """The error starting the MLflow tracker at ``uri`` raises, and the seconds it took."""
    cfg = LogConfig(backends=("mlflow",), mlflow_tracking_uri=uri, server_timeout=server_timeout)
    start = time.monotonic()
    with pytest.raises(ValueError) as raised:
        Trackers(run_dir, cfg, step=0, logged=0, config={"seed": 0})
    return str(raised.value), time.monotonic() - start


def test_an_mlflow_server_that_never_answers_is_one_error_naming_it_and_the_bound_in_seconds(
    tmp_path, silent_server
):
    error, took = start_mlflow(tmp_path, silent_server, server_timeout=2.0)
    assert error.startswith(
        f"log.backends: mlflow: the server at {silent_server} did not answer within 2 s (log.server_timeout)"
    )
    assert "\n" not in error
    assert 1.5 <= took < 20, took  # one try of 2 s, not MLflow's 8 tries of 120 s
    # The same bound holds every later request of the run (a step it fails to take is counted).
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_an_mlflow_server_nobody_listens_for_is_one_error_naming_it_at_once(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: a connection is refused
    uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
    try:
        error, took = start_mlflow(tmp_path, uri, server_timeout=30.0)
    finally:
        closed.close()
    assert error.startswith(f"log.backends: mlflow: the server at {uri} could not be reached (")
    assert "refused" in error and "\n" not in error
    assert took < 20, took  # refused at once: no waiting for the 30 s bound


def test_a_timeout_the_user_set_for_mlflow_stands_and_is_named(tmp_path, silent_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    error, took = start_mlflow(tmp_path, silent_server, server_timeout=30.0)
    assert "did not answer within 1 s (MLFLOW_HTTP_REQUEST_TIMEOUT)" in error
    assert took < 20, took
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "1"


def test_an_mlflow_sqlite_store_under_a_file_is_one_error_naming_the_path_at_once(tmp_path):
    (tmp_path / "afile").write_text("not a folder")  # fails for root too, as chmod would not
    path = tmp_path / "afile" / "mlflow.db"
    error, took = start_mlflow(tmp_path, f"sqlite:///{path}")
    assert error.startswith(f"log.backends: mlflow: cannot open the SQLite store {path} (")
    assert f"{tmp_path / 'afile'} is a file, not a folder" in error and "\n" not in error
    assert took < 20, took


def test_a_run_dirs_mlflow_db_that_is_a_folder_is_one_error_at_once_not_minutes_of_retries(tmp_path):
    (tmp_path / "mlflow.db").mkdir()  # MLflow retried opening it for about 100 s, then a traceback
    error, took = start_mlflow(tmp_path)
    path = (tmp_path / "mlflow.db").resolve()
    assert error.startswith(f"log.backends: mlflow: cannot open the SQLite store {path} (a folder)")
    assert took < 20, took
