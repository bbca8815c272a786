"""The flows a conformance server expects a device to go through (``--conformance-flows``).

Click turn, click turn with barge-in, wake-word turn with wake-word barge-in, push-to-talk turn,
then another push-to-talk turn after the channel timeout (120 s rule).
"""

from __future__ import annotations

import asyncio

import numpy as np

from device.audio.sources import ScriptedSource, Utterance, last_voiced
from device.controller import DeviceController
from device.errors import ScenarioError
from device.scenario import wait_until
from protocol.enums import DeviceState

TIMEOUT_S = 20.0


def voiced_utterance(seconds: float = 1.0) -> Utterance:
    """A harmonic 'vowel' (200 Hz + overtones) with 0.2 s of silence before it."""
    t = np.arange(int(16000 * seconds)) / 16000
    voice = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 6))
    pcm = np.concatenate([np.zeros(3200), voice * 6000]).astype(np.int16)
    return Utterance(pcm, last_voiced(pcm), "vowel")


async def _turn(ctl: DeviceController, utt: Utterance) -> None:
    await wait_until(lambda: ctl.mic_open, TIMEOUT_S, "listen start")
    assert isinstance(ctl.source, ScriptedSource)
    ctl.source.play(utt)
    await wait_until(lambda: ctl.turn.first_audio is not None, TIMEOUT_S, "the reply")


async def run_conformance_flows(ctl: DeviceController, channel_timeout_s: float) -> None:
    """Drive a booted, idle device through every flow the checker scores."""
    if not isinstance(ctl.source, ScriptedSource):
        raise ScenarioError("conformance flows need the scripted source")
    utt = voiced_utterance()
    # 1. click: one full turn, then a turn cut short by a click
    await ctl.click()
    await _turn(ctl, utt)
    await asyncio.wait_for(ctl.turn_ended.wait(), TIMEOUT_S)
    await _turn(ctl, utt)
    await asyncio.sleep(0.3)
    await ctl.click()  # speaking → abort
    await asyncio.wait_for(ctl.turn_ended.wait(), TIMEOUT_S)
    await wait_until(lambda: ctl.mic_open, TIMEOUT_S, "listen start after the barge-in")
    await ctl.click()  # listening → hang up
    # 2. wake word, then a wake-word barge-in; the server ends the chat
    await ctl.wake_word("hey computer")
    await _turn(ctl, utt)
    await asyncio.sleep(0.3)
    await ctl.wake_word("hey computer")
    await wait_until(lambda: ctl.state == DeviceState.IDLE, TIMEOUT_S, "server close → idle")
    # 3. push-to-talk twice, the second after the channel timeout
    for _ in range(2):
        await ctl.press()
        ctl.source.play(utt)
        source = ctl.source
        await wait_until(lambda s=source: not s.busy, TIMEOUT_S, "the utterance")  # type: ignore[misc]
        await ctl.release()
        await asyncio.wait_for(ctl.turn_ended.wait(), TIMEOUT_S)
        await ctl.player.wait_drained()
        await asyncio.sleep(channel_timeout_s + 0.3)
    ctl.channel.close()
