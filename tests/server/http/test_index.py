"""``GET /`` on the HTTP port names the endpoints and the version (HTML, or JSON on request)."""

from __future__ import annotations

import aiohttp

from server.http.index import server_version

from .conftest import WS_PORT


async def test_index_page_names_the_endpoints(server) -> None:
    async with server() as running, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{running.port}"
        async with http.get(base + "/", headers={"Accept": "text/html,*/*"}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            page = await response.text()
        async with http.get(base + "/", headers={"Accept": "application/json"}) as response:
            assert response.status == 200
            info = await response.json()
    assert info == {
        "name": "xiaozhi-py server",
        "version": server_version(),
        "ota_url": f"{base}/xiaozhi/ota/",
        "activation_url": f"{base}/xiaozhi/ota/activate",
        "websocket_url": f"ws://127.0.0.1:{WS_PORT}/xiaozhi/v1/",
        "healthz_url": f"{base}/healthz",
        "metrics_url": f"{base}/metrics",
    }
    for value in info.values():
        assert value in page
    assert info["version"] != "0+unknown"  # installed with make setup (pip -e)


async def test_ota_at_the_root_keeps_the_root(server) -> None:
    async with (
        server(path="/") as running,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{running.port}/") as response,
    ):
        assert response.status == 200
        assert "websocket" in await response.json()  # the OTA answer, not the page
