"""Checks of a board or simulator (protocol.md §10): the suite runs a recording harness server
(:class:`DeviceCheckServer`), the device talks to it, :func:`check_device` judges the recording."""

from conformance.device.check import check_device, device_results
from conformance.device.harness import DeviceCheckServer
from conformance.device.harness_config import HarnessConfig

__all__ = ["DeviceCheckServer", "HarnessConfig", "check_device", "device_results"]
