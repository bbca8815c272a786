"""Builds the transcription endpoints from the server's shared dependencies (composition root
helper called by :mod:`server.app`): one admission count, one :class:`~.streams.StreamFactory`
over the shared providers and executor, the endpoints, the routes and the recordings."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from server.config import Settings
from server.providers.base import AsrProvider, VadProvider
from server.recordings.assistant import AssistantRecording, RecordingChannel
from server.recordings.pcm_recording import PcmRecording
from server.recordings.retention import sweep_forever
from server.recordings.store import RecordingStore
from server.session.connection import Channel, PeerInfo
from server.transcribe.batching import batching_provider
from server.transcribe.channel import Admission
from server.transcribe.routes import TranscribeRoutes
from server.transcribe.sequenced_endpoint import SequencedEndpoint
from server.transcribe.sequenced_session import SessionRegistry
from server.transcribe.sherpa_endpoint import SherpaEndpoint
from server.transcribe.streams import RecordingSink, StreamFactory, StreamOwner
from server.transcribe.upload_endpoint import UploadEndpoint
from server.transcribe.upload_transcript import UploadTranscriptions

if TYPE_CHECKING:
    from server.storage import Storage


class TranscribeService:
    """Everything of the transcription side; :meth:`start` the sweeper, :meth:`close` at stop."""

    def __init__(
        self,
        settings: Settings,
        vad: VadProvider,
        asr: AsrProvider,
        executor: Executor,
        shared: Storage | None = None,
    ) -> None:
        """``shared``: the server's store (server.storage); resumable sessions are saved there,
        so a reconnect that lands on another worker resumes."""
        t = settings.transcribe
        rec = t.recordings
        self.store = RecordingStore(rec.dir) if rec.enabled else None
        self.batcher = (
            batching_provider(asr, wait_ms=t.batch_wait_ms, streams=t.max_active_streams)
            if t.batching
            else None
        )
        self.admission = Admission(t.max_active_streams)
        self.streams = StreamFactory(
            vad,
            self.batcher.provider if self.batcher is not None else asr,
            settings.vad,
            self.batcher.executor if self.batcher is not None else executor,
            self.admission,
            phrases=t.phrases,
            queue_packets=t.queue_packets,
            recorder=self._recorder if self.store is not None else None,
        )
        self.sessions = SessionRegistry(self.streams, t.resume_window_s, shared)
        self.routes = TranscribeRoutes(
            admission=self.admission,
            jwt_keys=[k.get_secret_value() for k in t.jwt_keys],
            sherpa=SherpaEndpoint(self.streams, idle_timeout_s=t.idle_timeout_s),
            sequenced=SequencedEndpoint(
                self.sessions, heartbeat_s=t.heartbeat_s, idle_timeout_s=t.idle_timeout_s
            ),
            upload=UploadEndpoint(
                self.store,
                idle_timeout_s=t.idle_timeout_s,
                transcriptions=UploadTranscriptions(self.streams, t.resume_window_s),
            )
            if self.store is not None and "upload" in rec.endpoints
            else None,
            assistant_path=settings.websocket.path,
            port_tokens=[t.get_secret_value() for t in settings.websocket.tokens],
        )
        self._settings = settings
        self._sweeper: asyncio.Task[None] | None = None

    def _recorder(self, owner: StreamOwner, endpoint: str) -> RecordingSink | None:
        rec = self._settings.transcribe.recordings
        if self.store is None or endpoint not in rec.endpoints:
            return None
        if "*" not in rec.devices and owner.device_id not in rec.devices:
            return None
        info = self.store.create(owner.device_id or "unknown", owner.user, endpoint)
        return PcmRecording(self.store, info)

    def record_assistant(self, channel: Channel, peer: PeerInfo) -> RecordingChannel | None:
        """``channel`` wrapped to record this assistant session, when it opted in."""
        rec = self._settings.transcribe.recordings
        if self.store is None or "assistant" not in rec.endpoints:
            return None
        if "*" not in rec.devices and peer.device_id not in rec.devices:
            return None
        info = self.store.create(peer.device_id or "unknown", peer.client_id, "assistant")
        return RecordingChannel(
            channel, AssistantRecording(self.store, info), peer.protocol_version
        )

    def start(self) -> None:
        rec = self._settings.transcribe.recordings
        if self.store is not None:
            self._sweeper = asyncio.get_running_loop().create_task(
                sweep_forever(self.store, rec.retention_s, rec.sweep_interval_s)
            )

    async def close(self) -> None:
        await self.sessions.close()
        upload = self.routes.upload
        if upload is not None and upload.transcriptions is not None:
            await upload.transcriptions.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.batcher is not None:
            self.batcher.close()
