// Talk: a browser board over /xiaozhi/v1/ (protocol.md §3, §5, §6). Opus 16 kHz / 60 ms uplink by
// WebCodecs AudioEncoder, Opus downlink decoded by AudioDecoder and scheduled gap-free.
import { loadConfig, notice, openMic, rms, showSecureContextNotice, startCapture } from "/static/common.js";
import { DemoBoard } from "/static/board-mcp.js";

const $ = (id) => document.getElementById(id);
const stats = { sent: 0, received: 0, decoded: 0, played: 0, turns: 0 };
window.talkStats = stats; // read by the browser tests
const PLAYBACK_LEAD_S = 0.12; // jitter buffer before the first reply frame plays
const BARGE_IN_LEVEL = 0.04, BARGE_IN_MS = 300;

let config, ws = null, sessionId = "", state = "idle", mode = "auto";
let capture = null, encoder = null, encodedTs = 0, loudMs = 0;
let player = null, decoder = null, downlink = { rate: 24000, frame: 60 };
let pttHeld = false, waitingDrain = false;

const board = new DemoBoard({ onChange: showThings, onCall: showCall });

function log(line) {
  const el = $("log");
  el.textContent += `${new Date().toISOString().slice(11, 23)} ${line}\n`;
  el.scrollTop = el.scrollHeight;
}

function setState(next) {
  state = next;
  const el = $("state");
  el.textContent = next;
  el.className = "state " + next;
  $("interrupt").disabled = next !== "speaking";
  $("hangup").disabled = ws === null;
  $("start").disabled = ws !== null && mode === "auto";
}

function showThings(s) {
  const lamp = s.lamp;
  $("bulb").className = "bulb" + (lamp.power ? " on" : "");
  $("bulb").style.background = lamp.power ? (lamp.color === "warm white" ? "#ffe7a8" : lamp.color === "white" ? "#fff3b0" : lamp.color) : "";
  $("bulb").setAttribute("aria-label", `lamp ${lamp.power ? "on" : "off"}`);
  $("lamp-state").textContent = lamp.power ? `on, ${lamp.color}, ${lamp.brightness}%` : "off";
  $("volume").textContent = s.audio_speaker.volume;
  $("volume-meter").value = s.audio_speaker.volume;
}

function showCall(call) {
  const li = document.createElement("li");
  li.textContent = `${call.name}(${JSON.stringify(call.arguments)}) → ${call.isError ? "error: " : ""}${call.result}`;
  $("tool-calls").append(li);
}

function updateAudioStats() {
  $("audio-stats").textContent = `Audio: ${stats.sent} frames sent, ${stats.received} received, ${stats.decoded} decoded, ${stats.played} played`;
}

function send(obj) {
  if (ws?.readyState !== WebSocket.OPEN) return;
  const text = JSON.stringify(sessionId ? { session_id: sessionId, ...obj } : obj);
  log("→ " + text.slice(0, 200));
  ws.send(text);
}

// ------------------------------------------------------------------ uplink

function makeEncoder() {
  const enc = new AudioEncoder({
    output: (chunk) => {
      if (state !== "listening" || ws?.readyState !== WebSocket.OPEN) return;
      const packet = new Uint8Array(chunk.byteLength);
      chunk.copyTo(packet);
      ws.send(packet);
      stats.sent++;
      if (stats.sent % 10 === 0) updateAudioStats();
    },
    error: (e) => log("encoder error: " + e.message),
  });
  enc.configure({ codec: "opus", sampleRate: 16000, numberOfChannels: 1, bitrate: 24000, opus: { frameDuration: 60000, complexity: 0 } });
  return enc;
}

function onMicChunk(samples) {
  const level = rms(samples);
  $("level").value = Math.min(1, level * 4);
  if (state === "speaking" && $("voice-barge-in").checked) {
    loudMs = level > BARGE_IN_LEVEL ? loudMs + 20 : 0;
    if (loudMs >= BARGE_IN_MS) { loudMs = 0; log("voice barge-in"); interrupt("voice"); }
  }
  if (state !== "listening" || !encoder || encoder.state !== "configured") return;
  encoder.encode(new AudioData({ format: "f32", sampleRate: 16000, numberOfFrames: samples.length, numberOfChannels: 1, timestamp: encodedTs, data: samples }));
  encodedTs += (samples.length * 1e6) / 16000;
}

// ------------------------------------------------------------------ downlink

function makePlayer() {
  const context = new AudioContext();
  return { context, next: 0, pending: 0 };
}

function makeDecoder() {
  const dec = new AudioDecoder({
    output: (data) => {
      stats.decoded++;
      const frames = data.numberOfFrames;
      const buffer = player.context.createBuffer(1, frames, data.sampleRate);
      const channel = new Float32Array(frames);
      data.copyTo(channel, { planeIndex: 0, format: "f32-planar" });
      data.close();
      buffer.copyToChannel(channel, 0);
      const source = player.context.createBufferSource();
      source.buffer = buffer;
      source.connect(player.context.destination);
      const now = player.context.currentTime;
      if (player.next < now) player.next = now + PLAYBACK_LEAD_S; // (re)start: a small lead
      source.start(player.next);
      player.next += buffer.duration;
      player.pending++;
      source.onended = () => { stats.played++; player.pending--; updateAudioStats(); drained(); };
    },
    error: (e) => log("decoder error: " + e.message),
  });
  dec.configure({ codec: "opus", sampleRate: downlink.rate, numberOfChannels: 1 });
  return dec;
}

function onDownlink(packet) {
  stats.received++;
  if (state !== "speaking" || !decoder || decoder.state !== "configured") return; // as the firmware: only while speaking
  decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: stats.received * downlink.frame * 1000, data: packet }));
}

function flushPlayback() {
  if (!player) return;
  player.context.close();
  player = makePlayer();
  if (decoder && decoder.state !== "closed") decoder.close();
  decoder = makeDecoder();
}

/** auto mode: after `tts stop`, listen again once the queued audio has played (§5.3). */
function drained() {
  if (!waitingDrain || player.pending > 0) return;
  waitingDrain = false;
  if (state === "listening" && mode === "auto") send({ type: "listen", state: "start", mode: "auto" });
}

// ------------------------------------------------------------------ messages

function onText(text) {
  let msg;
  try { msg = JSON.parse(text); } catch { log("← (not JSON) " + text.slice(0, 100)); return; }
  if (msg.type !== "mcp") log("← " + text.slice(0, 200));
  switch (msg.type) {
    case "hello": break;
    case "stt":
      if (msg.partial || msg.is_final === false) $("transcript").innerHTML = `<span class="partial"></span>`, $("transcript").firstChild.textContent = msg.text;
      else $("transcript").textContent = msg.text;
      break;
    case "llm": if (msg.emotion) $("reply").dataset.emotion = msg.emotion; break;
    case "tts":
      if (msg.state === "start") { $("reply").textContent = ""; if (state === "idle" || state === "listening") setState("speaking"); }
      else if (msg.state === "sentence_start" && typeof msg.text === "string") $("reply").textContent += ($("reply").textContent ? " " : "") + msg.text;
      else if (msg.state === "stop" && state === "speaking") {
        stats.turns++;
        if (mode === "manual") setState("idle");
        else { setState("listening"); waitingDrain = true; drained(); }
      }
      break;
    case "mcp": {
      log("← mcp " + JSON.stringify(msg.payload).slice(0, 160));
      const reply = board.handle(msg.payload);
      if (reply) send({ type: "mcp", payload: reply });
      break;
    }
    case "alert": notice(`${msg.status}: ${msg.message}`, "info"); break;
    default: break;
  }
}

// ------------------------------------------------------------------ connection

async function ota(deviceId, clientId) {
  try {
    const r = await fetch(config.ota_path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Device-Id": deviceId, "Client-Id": clientId },
      body: JSON.stringify({ application: { name: "browser-board", version: "2.4.2" }, board: { type: "browser", name: "browser-board" }, mac_address: deviceId, uuid: clientId }),
    });
    return r.ok ? await r.json() : null;
  } catch { return null; }
}

async function connect() {
  if (ws) return;
  notice("");
  const deviceId = $("device-id").value.trim(), clientId = $("client-id").value.trim();
  localStorage.setItem("xiaozhi.device-id", deviceId);
  localStorage.setItem("xiaozhi.client-id", clientId);
  setState("connecting");
  if (!capture) {
    try { capture = await startCapture(await openMic(), onMicChunk); }
    catch (err) { notice(err.message); setState("idle"); return; }
  }
  encoder = encoder || makeEncoder();
  player = player || makePlayer();
  await player.context.resume();
  decoder = decoder || makeDecoder();
  const answer = await ota(deviceId, clientId);
  if (answer?.activation?.message) notice(`Activation: ${answer.activation.message} (code ${answer.activation.code})`, "info");
  const base = answer?.websocket?.url || config.ws_base + config.assistant_path;
  const url = new URL(base);
  url.searchParams.set("device-id", deviceId);
  url.searchParams.set("client-id", clientId);
  url.searchParams.set("protocol-version", "1");
  if (answer?.websocket?.token) url.searchParams.set("authorization", "Bearer " + answer.websocket.token);
  log("connecting to " + url.origin + url.pathname);
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  ws = socket;
  const hello = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server sent no hello within 10 s")), 10000);
    socket.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      const msg = JSON.parse(e.data);
      if (msg.type === "hello" && msg.transport === "websocket") {
        clearTimeout(timer);
        sessionId = typeof msg.session_id === "string" ? msg.session_id : "";
        downlink = { rate: msg.audio_params?.sample_rate || 24000, frame: msg.audio_params?.frame_duration || 60 };
        resolve();
      }
      onText(e.data);
    };
    socket.onclose = (e) => reject(new Error(`Could not connect to ${url.origin} (close code ${e.code}): is the server running, and is this board activated when device tokens are on?`));
  });
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: "hello", version: 1, features: { mcp: true }, transport: "websocket", audio_params: { format: "opus", sample_rate: 16000, channels: 1, frame_duration: 60 } }));
  };
  try { await hello; } catch (err) { notice(err.message); ws = null; socket.close(); setState("idle"); return; }
  if (decoder.state !== "closed") decoder.close();
  decoder = makeDecoder(); // at the server's downlink rate
  socket.onmessage = (e) => (typeof e.data === "string" ? onText(e.data) : onDownlink(new Uint8Array(e.data)));
  socket.onclose = (e) => { log(`socket closed (${e.code}${e.reason ? " " + e.reason : ""})`); ws = null; sessionId = ""; setState("idle"); };
  setState("idle");
}

async function listen(listenMode) {
  await connect();
  if (!ws) return;
  if (state === "speaking") { send({ type: "abort" }); flushPlayback(); }
  setState("listening");
  send({ type: "listen", state: "start", mode: listenMode });
}

function interrupt(reason) {
  if (state !== "speaking") return;
  send(reason === "voice" ? { type: "abort", reason: "wake_word_detected" } : { type: "abort" });
  flushPlayback(); // stop at once; the server's `tts stop` follows
}

function hangup() {
  if (ws) ws.close(1000, "hang up");
  ws = null;
  flushPlayback();
  setState("idle");
}

async function pttDown() {
  if (pttHeld) return;
  pttHeld = true;
  $("ptt").setAttribute("aria-pressed", "true");
  await listen("manual");
}

function pttUp() {
  if (!pttHeld) return;
  pttHeld = false;
  $("ptt").setAttribute("aria-pressed", "false");
  if (state === "listening") { send({ type: "listen", state: "stop" }); setState("idle"); }
}

function applyMode() {
  mode = $("mode").value;
  $("ptt").hidden = mode !== "manual";
  $("start").hidden = mode === "manual";
  $("start").textContent = "Start conversation";
}

async function init() {
  const params = new URLSearchParams(location.search);
  const random = () => Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join(":");
  $("device-id").value = params.get("device-id") || localStorage.getItem("xiaozhi.device-id") || random();
  $("client-id").value = params.get("client-id") || localStorage.getItem("xiaozhi.client-id") || crypto.randomUUID();
  if (params.get("mode")) $("mode").value = params.get("mode");
  applyMode();
  $("mode").addEventListener("change", applyMode);
  showSecureContextNotice();
  if (typeof AudioEncoder === "undefined" && window.isSecureContext) notice("This browser has no WebCodecs Opus (AudioEncoder): use a recent Chromium, Chrome or Edge.");
  config = await loadConfig();
  $("start").addEventListener("click", () => listen("auto"));
  $("interrupt").addEventListener("click", () => interrupt("button"));
  $("hangup").addEventListener("click", hangup);
  const ptt = $("ptt");
  ptt.addEventListener("pointerdown", (e) => { e.preventDefault(); pttDown(); });
  ptt.addEventListener("pointerup", pttUp);
  ptt.addEventListener("pointerleave", pttUp);
  ptt.addEventListener("keydown", (e) => { if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); pttDown(); } });
  ptt.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") { e.preventDefault(); pttUp(); } });
  showThings(board.state);
  document.body.dataset.ready = "1";
}
init().catch((err) => notice(err.message));
