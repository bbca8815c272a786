"""HTTP side of the server: OTA/config, activation, health and Prometheus metrics."""

from server.http.app import HttpSide, create_http_app, start_http
from server.http.cli import run_devices_command
from server.http.urls import board_urls, local_ipv4_addresses

__all__ = [
    "HttpSide",
    "board_urls",
    "create_http_app",
    "local_ipv4_addresses",
    "run_devices_command",
    "start_http",
]
