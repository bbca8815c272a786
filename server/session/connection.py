"""One device connection: the thin shell around the :class:`~.core.SessionCore`.

Three tasks post typed events into one bounded :class:`~.inbox.Inbox`: the socket reader
(decoded text messages, binary audio, the channel closing), the
:class:`~server.pipeline.speech_in_worker.SpeechInWorker` and each turn's
:class:`~server.pipeline.speech_out.Reply`. One loop (:meth:`Connection.run`) takes them in
order, applies them to the core and runs the actions it returns. The
:class:`~server.pipeline.player.Player` sends a reply's frames and asks the core, right before
every write, whether their turn is still the active one. No callbacks into this class, no lock.

Bad input (malformed JSON, unknown types, bad binary headers, corrupt Opus) is logged, counted in
the metrics by error code and dropped; the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from protocol.errors import MessageError
from protocol.messages import (
    DeviceMcp,
    IotDescriptors,
    IotStates,
    WireModel,
    decode_device_message,
    encode_message,
)
from server.errors import ErrorCode
from server.pipeline.player import Player
from server.pipeline.speech_in_queue import Frame
from server.pipeline.speech_in_worker import SpeechInWorker
from server.pipeline.speech_out import Downlink, Reply
from server.providers.base import DialogueContext, ToolCaller
from server.security.flood import POLICY_VIOLATION, UplinkGate, Verdict
from server.session import events as ev
from server.session.channel import Channel, ChannelClosed, PeerInfo, SessionLog
from server.session.core import CoreSettings, Phase, SessionCore
from server.session.deps import SessionDeps
from server.session.inbox import Inbox
from server.session.ledger import TurnLedger
from server.session.reply_tasks import HeldOutbox, ReplyTasks, gated_tools
from server.session.tools import DeviceTools

__all__ = ["Channel", "ChannelClosed", "Connection", "PeerInfo", "SessionLog"]

logger = logging.getLogger(__name__)
CLOSE_WAIT_S = 1.0
"""Longest we wait for the peer to answer our Close frame (s)."""


@dataclass
class _Tasks:
    reader: asyncio.Task[None] | None = None
    speech_in: asyncio.Task[None] | None = None
    player: asyncio.Task[None] | None = None


class Connection:
    """Runs one session until the socket closes, the hello times out or the session idles."""

    def __init__(self, channel: Channel, deps: SessionDeps, peer: PeerInfo) -> None:
        self._channel, self._deps, self._peer = channel, deps, peer
        self.session_id = peer.session_id or str(uuid.uuid4())
        self.log = SessionLog(
            logger, {"session_id": self.session_id[:8], "device_id": peer.device_id}
        )
        s = deps.settings
        self.core = SessionCore(
            CoreSettings(
                session_id=self.session_id,
                downlink_sample_rate_hz=s.audio.downlink_sample_rate_hz,
                downlink_frame_duration_ms=s.audio.downlink_frame_duration_ms,
                hello_timeout_s=s.websocket.hello_timeout_s,
                idle_timeout_s=s.websocket.idle_timeout_s,
                reply_timeout_s=max(s.dialogue.reply_timeout_s, s.dialogue.tool_call_timeout_s + 1),
                barge_in_speech_ms=deps.barge_in.min_speech_ms,
                echo_guard_s=deps.barge_in.echo_guard_s,
                language=s.asr.language,
                speculate=s.dialogue.speculative_start,
                transport=peer.transport,
                udp=peer.udp,
            )
        )
        self.inbox = Inbox(max_audio=2 * deps.uplink_queue_frames)
        self.uplink_gate = UplinkGate(deps.settings.security.limits)
        """Audio faster than real time is dropped, text floods close (server.security.flood)."""
        self._timers: dict[str, float] = {}
        self._tasks = _Tasks()
        self._replies = ReplyTasks(self.inbox.post, deps.metrics, self.log)
        self._history: list[dict[str, Any]] = []
        self._tools = DeviceTools(
            self._send, call_timeout_s=s.dialogue.tool_call_timeout_s, log=self.log
        )
        self._speech_in = SpeechInWorker(
            deps.vad,
            deps.asr,
            s.vad,
            deps.executor,
            deps.metrics,
            self.inbox.post,
            self.log,
            max_frames=deps.uplink_queue_frames,
            clock=time.monotonic,
            slow_notice_s=s.asr.slow_notice_s,
            batcher=deps.speech_in,
            speaker=peer.device_id or self.session_id,  # a board's channel outlives sessions
        )
        self._player = Player(
            self._send,
            self._send_bytes,
            self.core.is_current,
            self.inbox.post,
            self.log,
            frame_s=s.audio.downlink_frame_duration_ms / 1000,
            burst_frames=min(s.audio.burst_frames, s.audio.max_ahead_frames - 1),
        )
        self._phrases_key: tuple[int, int] | None = None
        self.dropped_frames = 0
        self.ended = asyncio.Event()
        """Set once the session is over (socket closed, tasks ended)."""

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        metrics = self._deps.metrics
        metrics.connection_opened()
        self._tasks.reader = asyncio.create_task(self._read(), name="reader")
        self._refresh_grammar()
        try:
            await self._apply(ev.SessionOpened(time.monotonic(), self._peer.protocol_version))
            while self.core.phase is not Phase.CLOSED:
                event = await self.inbox.get(self._next_timeout())
                if event is None:
                    event = self._fired_timer()
                    if event is None:
                        continue
                await self._apply(event)
        except ChannelClosed:
            with contextlib.suppress(ChannelClosed):
                await self._apply(ev.ChannelLost(time.monotonic()))
        finally:
            await self._shutdown()
            metrics.connection_closed()
            self.log.info("session ended")
            self.ended.set()

    def request_shutdown(self, grace_s: float) -> None:
        """The server is stopping: let the reply in progress finish (at most ``grace_s``), then
        close with 1001."""
        self.inbox.post(ev.ShutdownRequested(grace_s, time.monotonic()))

    def _next_timeout(self) -> float | None:
        if not self._timers:
            return None
        return max(0.0, min(self._timers.values()) - time.monotonic())

    def _fired_timer(self) -> ev.TimerFired | None:
        now = time.monotonic()
        for name, at_s in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if at_s <= now:
                del self._timers[name]
                return ev.TimerFired(name, now)
        return None

    async def _apply(self, event: ev.Event) -> None:
        for action in self.core.handle(event):
            await self._act(action)

    async def _read(self) -> None:
        """Socket → inbox, until the peer goes away."""
        inbox, limit = self.inbox, self._deps.settings.websocket.max_message_bytes
        try:
            while True:
                data = await self._channel.recv()
                now = time.monotonic()
                gate = self.uplink_gate
                verdict = gate.audio(len(data), now) if isinstance(data, bytes) else gate.text(now)
                if verdict is Verdict.CLOSE:
                    self.log.warning("closing: %s (1008)", gate.close_reason)
                    self._deps.metrics.error("uplink-flood-closed")
                    await self._channel.close(POLICY_VIOLATION, gate.close_reason)
                    inbox.post(ev.ChannelLost(time.monotonic()))
                    return
                if verdict is not Verdict.PASS:
                    self._dropped(verdict.value)
                    continue
                if isinstance(data, bytes):
                    if not inbox.put_audio(ev.BinaryReceived(data, now)):
                        self._dropped(ErrorCode.UPLINK_QUEUE_FULL)
                    continue
                try:
                    message = decode_device_message(data, max_bytes=limit)
                except MessageError as exc:
                    await inbox.put_message(ev.BadMessage(exc.code, str(exc), now))
                else:
                    await inbox.put_message(ev.MessageReceived(message, now))
        except asyncio.CancelledError:
            raise
        except Exception:  # ChannelClosed or the socket library's own close errors
            inbox.post(ev.ChannelLost(time.monotonic()))

    # ------------------------------------------------------------------ actions

    async def _act(self, action: ev.Action) -> None:
        match action:
            case ev.Send(message=message):
                await self._send(message)
            case ev.PlaySentence():
                self._ensure_player()
                self._player.play(action)
            case ev.FeedAudio(epoch=epoch, payload=payload, arrival_s=arrival):
                if not self._speech_in.put_frame(Frame(epoch, payload, arrival)):
                    self._dropped(ErrorCode.UPLINK_QUEUE_FULL)
            case ev.DropAudio(reason=reason):
                self._deps.metrics.frame_dropped(reason)
            case ev.OpenUtterance(epoch=epoch, mode=mode):
                self._ensure_speech_in()
                self._speech_in.begin(epoch, mode)
            case ev.FinishUtterance(epoch=epoch):
                self._speech_in.finish(epoch)
            case ev.CloseMicrophone():
                self._speech_in.cancel()
            case ev.StartReply():
                self._start_reply(action)
            case ev.ContinueReply():
                self._continue_reply(action)
            case ev.Speculate():
                self._speculate(action)
            case ev.DiscardSpeculation():
                self._replies.discard()
            case ev.CancelReply(turn_id=turn_id):
                self._replies.cancel(turn_id)
            case ev.ReplyFinished(turn_id=turn_id, completed=completed):
                self._replies.finish(turn_id, completed, self._player.forget(turn_id))
            case ev.SetTimer(name=name, at_s=at_s):
                self._timers[name] = at_s
            case ev.CancelTimer(name=name):
                self._timers.pop(name, None)
            case ev.RefreshGrammar():
                self._refresh_grammar()
            case ev.FeedTools(message=message):
                self._feed_tools(message)
            case ev.StartToolDiscovery():
                self._start_tools()
            case ev.CountError(code=code, detail=detail):
                self._deps.metrics.error(code)
                if detail:
                    self.log.info("%s", detail)
            case ev.Log(level=level, message=text):
                self.log.log(level, "%s", text)
            case ev.Close(code=code, reason=reason):
                # boards drop TCP instead of answering a Close frame: wait for it only briefly
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_WAIT_S):
                        await self._channel.close(code, reason)

    def _dropped(self, reason: str) -> None:
        self.dropped_frames += 1
        self._deps.metrics.frame_dropped(reason)

    # ------------------------------------------------------------------ tools and grammar

    def _start_tools(self) -> None:
        """MCP discovery in the background; its end posts ToolsChanged (never waited for)."""
        try:
            self._tools.start_mcp(lambda: self.inbox.post(ev.ToolsChanged(time.monotonic())))
        except ImportError as exc:
            self.log.warning("MCP client unavailable: %s", exc)

    def _feed_tools(self, message: object) -> None:
        if isinstance(message, DeviceMcp):
            self._tools.feed_mcp(message.payload)
        elif isinstance(message, IotDescriptors | IotStates):
            before = self._tools.version
            try:
                self._tools.feed_legacy(message)
            except ImportError as exc:
                self.log.info("legacy iot ignored: %s", exc)
            if self._tools.version != before:
                self._refresh_grammar()

    def _refresh_grammar(self) -> None:
        """Give speech-in the dialogue's phrases for the current tools (grammar ASR only)."""
        if not self._deps.asr.capabilities.grammar:
            return
        key = (id(self._tools), self._tools.version)
        if key == self._phrases_key:
            return
        self._phrases_key = key
        phrases = self._deps.dialogue.phrases(self._tools.tools)
        self._speech_in.set_phrases(tuple(phrases) if phrases else None)

    # ------------------------------------------------------------------ replies

    def _start_reply(self, start: ev.StartReply) -> None:
        if start.speculative:
            history = self._replies.adopt(start.turn_id, start.marks)
            if history is not None:
                self._history = history
                return
        ledger = TurnLedger(start.turn_id)
        for stage, at_s in start.marks.items():
            ledger.mark(stage, at_s)
        context = self._context(start.language, self._tools.call_tool, self._history)
        reply = Reply(
            start.turn_id,
            self._deps,
            self._downlink(start.version),
            context,
            ledger,
            self.inbox.post,
            self.log,
        )
        self._replies.start(reply, start.text, start.fixed)

    def _continue_reply(self, go_on: ev.ContinueReply) -> None:
        context = self._context(go_on.language, self._tools.call_tool, self._history)

        def make(ledger: TurnLedger) -> Reply:
            return Reply(
                go_on.turn_id,
                self._deps,
                self._downlink(go_on.version),
                context,
                ledger,
                self.inbox.post,
                self.log,
                first_seq=go_on.first_seq,
            )

        self._replies.extend(go_on.turn_id, make, go_on.text, go_on.fixed)

    def _speculate(self, action: ev.Speculate) -> None:
        """Answer ``action.text`` unheard: held events, gated tools, a copy of the history."""
        outbox = HeldOutbox(self.inbox.post)
        history = list(self._history)
        context = self._context(
            action.language, gated_tools(self._tools.call_tool, outbox), history
        )
        reply = Reply(
            0, self._deps, self._downlink(action.version), context, TurnLedger(0), outbox, self.log
        )
        self._replies.speculate(reply, action.text, outbox, history)

    def _downlink(self, version: int) -> Downlink:
        s = self._deps.settings.audio
        return Downlink(s.downlink_sample_rate_hz, s.downlink_frame_duration_ms, version)

    def _context(
        self, language: str, call_tool: ToolCaller, history: list[dict[str, Any]]
    ) -> DialogueContext:
        return DialogueContext(
            tools=self._tools.tools,
            call_tool=call_tool,
            history=history,
            language=language,
            device_id=self._peer.device_id,
        )

    # ------------------------------------------------------------------ outbound

    async def _send(self, message: WireModel) -> None:
        await self._send_bytes(encode_message(message))

    async def _send_bytes(self, data: str | bytes) -> None:
        try:
            await self._channel.send(data)
        except ChannelClosed:
            raise
        except Exception as exc:  # the socket is going away
            raise ChannelClosed(str(exc)) from exc

    # ------------------------------------------------------------------ lifecycle

    def _ensure_speech_in(self) -> None:
        """Started with the first utterance (an idle board costs no VAD/ASR state, no task)."""
        if self._tasks.speech_in is None:
            self._tasks.speech_in = asyncio.create_task(self._speech_in.run(), name="speech-in")

    def _ensure_player(self) -> None:
        if self._tasks.player is None:
            self._tasks.player = asyncio.create_task(self._player.run(), name="player")

    async def _shutdown(self) -> None:
        t = self._tasks
        tasks = [x for x in (t.reader, t.speech_in, t.player) if x is not None]
        await self._replies.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._tools.close()
        await self._speech_in.close()
