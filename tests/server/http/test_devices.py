"""DeviceRegistry persistence and activation codes; the devices CLI's error paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import devices
from server.devices import DeviceRegistry
from server.http import run_devices_command

from .conftest import make_settings


async def test_seen_keeps_known_fields_and_survives_restart(db_path: Path) -> None:
    registry = DeviceRegistry(db_path)
    first = await registry.seen("AA:BB:CC:00:11:22", "uuid-1", "board-a", "2.4.2", None)
    later = await registry.seen("aa:bb:cc:00:11:22", None, None, "2.4.3", None)
    assert later.device_id == "aa:bb:cc:00:11:22"
    assert (later.client_id, later.board, later.firmware) == ("uuid-1", "board-a", "2.4.3")
    assert later.first_seen == first.first_seen and later.last_seen >= first.last_seen
    await registry.close()
    await registry.close()  # idempotent

    reopened = DeviceRegistry(db_path)
    assert [r.device_id for r in await reopened.list()] == ["aa:bb:cc:00:11:22"]
    with pytest.raises(KeyError):
        await reopened.issue_activation("never-seen")
    with pytest.raises(ValueError):
        await reopened.seen("   ")
    await reopened.close()


async def test_codes_unique_among_pending(db_path: Path, monkeypatch) -> None:
    draws = iter([123456, 123456, 42])
    monkeypatch.setattr(devices.secrets, "randbelow", lambda _n: next(draws))
    registry = DeviceRegistry(db_path)
    try:
        for dev in ("dev-1", "dev-2"):
            await registry.seen(dev)
        assert (await registry.issue_activation("dev-1"))[0] == "123456"
        assert (await registry.issue_activation("dev-2"))[0] == "000042"  # collision redrawn
        bound = await registry.bind("123 456")  # spaces typed by a human are accepted
        assert bound is not None and bound.device_id == "dev-1" and bound.activation_code is None
        assert await registry.bind("123456") is None  # no longer pending
        assert await registry.is_bound("dev-1") and not await registry.is_bound("dev-2")
    finally:
        await registry.close()


@pytest.mark.parametrize(
    ("argv", "code"), [(["bind", "12ab"], 1), (["bind"], 2), (["frobnicate"], 2), ([], 2)]
)
def test_devices_cli_errors(db_path: Path, argv: list[str], code: int, capsys) -> None:
    settings = make_settings(db_path)
    assert run_devices_command(argv, settings) == code
    assert capsys.readouterr().err  # a message, not a traceback-free silence


def test_devices_list_without_database(db_path: Path, capsys) -> None:
    settings = make_settings(db_path)
    assert run_devices_command(["list"], settings) == 0
    assert "no devices" in capsys.readouterr().out
    assert not db_path.exists()  # listing does not create the database
