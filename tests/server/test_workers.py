"""The supervisor's port plan and the workers' command lines (server/workers.py)."""

from __future__ import annotations

import pytest

from server.errors import ConfigError
from server.workers import child_argv, worker_ports


def test_each_worker_gets_its_own_consecutive_ports() -> None:
    assert worker_ports(8000, 8003, 2) == [(8000, 8003), (8001, 8004)]


def test_with_reuse_port_every_worker_gets_the_same_ports() -> None:
    assert worker_ports(8000, 8003, 3, shared=True) == [(8000, 8003)] * 3
    with pytest.raises(ConfigError, match="fixed ports"):
        worker_ports(0, 8003, 2, shared=True)


@pytest.mark.parametrize(
    ("ws", "http", "n", "says"),
    [
        (8000, 8003, 4, "overlap the HTTP ports 8003-8006: choose e.g. --http-port 8100"),
        (0, 8003, 2, "--workers needs fixed ports"),
        (8000, 8003, 0, "at least 1"),
        (65535, 8003, 2, "pass 65535"),
    ],
)
def test_a_bad_port_plan_is_a_clear_config_error(ws: int, http: int, n: int, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        worker_ports(ws, http, n)


@pytest.mark.parametrize(
    "argv",
    [
        ["--workers", "2", "--config", "c.yaml", "--port", "9000"],
        ["--config", "c.yaml", "--workers=2", "--http-port=9100"],
        ["--config", "c.yaml", "--workers"],
        ["--workers", "--config", "c.yaml"],
    ],
)
def test_workers_run_the_same_arguments_on_their_own_ports(argv: list[str]) -> None:
    assert child_argv(argv, 8001, 8004) == [
        "--config", "c.yaml", "--port", "8001", "--http-port", "8004",
    ]  # fmt: skip
