"""deploy/compose.scaled.yaml checked statically (no Docker engine here): the services, ports,
volumes and mounted files; the worker count agrees with the nginx upstreams and the Prometheus
targets; the environment names are real settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from server.config_check import check_environment

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose() -> dict[str, object]:
    data = yaml.safe_load((DEPLOY / "compose.scaled.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_services_ports_and_volumes() -> None:
    compose = _compose()
    services: dict[str, dict[str, object]] = compose["services"]  # type: ignore[assignment]
    assert set(services) == {"xiaozhi-server", "nginx", "postgres", "prometheus"}
    server = services["xiaozhi-server"]
    assert server["command"][:1] == ["--workers"]  # type: ignore[index]
    assert server["ports"] == ["80:80", "9090:9090"]
    for name in ("nginx", "prometheus"):  # share the server's network: 127.0.0.1 upstreams
        assert services[name]["network_mode"] == "service:xiaozhi-server"
        assert "ports" not in services[name]
    assert services["xiaozhi-server"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }
    declared = set(compose["volumes"])  # type: ignore[arg-type]
    for service in services.values():
        image = str(service.get("image", ""))
        assert ":" in image and not image.endswith(":latest"), image
        for volume in service.get("volumes", []):  # type: ignore[attr-defined]
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
            else:
                assert source in declared, source


def test_environment_names_are_real_settings_and_storage_is_postgres() -> None:
    env = _compose()["services"]["xiaozhi-server"]["environment"]  # type: ignore[index]
    check_environment(dict.fromkeys(env, "x"))
    assert env["XIAOZHI_STORAGE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["XIAOZHI_STORAGE_URL"]


def test_worker_count_matches_nginx_upstreams_and_prometheus_targets() -> None:
    command = _compose()["services"]["xiaozhi-server"]["command"]  # type: ignore[index]
    workers = int(re.fullmatch(r"\$\{XIAOZHI_WORKERS:-(\d+)\}", command[1]).group(1))  # type: ignore[union-attr]
    site = (DEPLOY / "nginx" / "xiaozhi.conf").read_text()
    ws = re.findall(
        r"server 127\.0\.0\.1:(\d+) ", site.split("upstream xiaozhi_websocket")[1].split("}")[0]
    )
    http = re.findall(
        r"server 127\.0\.0\.1:(\d+) ", site.split("upstream xiaozhi_http")[1].split("}")[0]
    )
    assert [int(p) for p in ws] == [8000 + i for i in range(workers)]
    assert [int(p) for p in http] == [8003 + i for i in range(workers)]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"127.0.0.1:{8003 + i}" for i in range(workers)]
