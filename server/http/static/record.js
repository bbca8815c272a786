// Record: microphone → /ws/record as {index, data(base64 PCM16)} chunks of 0.5 s. Unacknowledged
// chunks stay buffered; after a drop the page reconnects with ?recording=ID (backoff 1 s doubling,
// at most 5 tries) and resends them in index order. Afterwards: the stored list, playable.
import { base64, floatToPcm16, loadConfig, notice, openMic, pcm16ToWav, rms, showSecureContextNotice, startCapture, tokenField } from "/static/common.js";

const $ = (id) => document.getElementById(id);
const CHUNK_SAMPLES = 8000, MAX_TRIES = 5, FIRST_BACKOFF_MS = 1000;
let config, token, capture = null, ws = null, recordingId = "", nextIndex = 0, ending = false;
let samples = [], samplesLen = 0;
const unacked = new Map(); // index → base64
const stats = { sent: 0, acked: 0, reconnects: 0, chunks: [], done: null, localSha256: "" };
window.recordStats = stats; // read by the browser tests

const counts = () => { $("counts").textContent = `${stats.sent} chunks sent, ${stats.acked} stored, ${unacked.size} waiting${stats.reconnects ? `, ${stats.reconnects} reconnect${stats.reconnects > 1 ? "s" : ""}` : ""}`; };
const conn = (t) => { $("conn").textContent = t; };

function sendChunk(index) {
  if (ws?.readyState !== WebSocket.OPEN || !unacked.has(index)) return;
  ws.send(JSON.stringify({ index, data: unacked.get(index) }));
  stats.sent++;
}

function onMic(chunk) {
  $("level").value = Math.min(1, rms(chunk) * 4);
  samples.push(chunk); samplesLen += chunk.length;
  if (samplesLen >= CHUNK_SAMPLES) cut();
}

function cut() {
  if (!samplesLen) return;
  const all = new Float32Array(samplesLen);
  let at = 0;
  for (const s of samples) { all.set(s, at); at += s.length; }
  samples = []; samplesLen = 0;
  const pcm = new Uint8Array(floatToPcm16(all).buffer);
  stats.chunks.push(pcm);
  unacked.set(nextIndex, base64(pcm));
  sendChunk(nextIndex++);
  counts();
}

function open(attempt = 0) {
  const params = new URLSearchParams({ token: token(), "device-id": $("device-id").value.trim(), format: "pcm" });
  if (recordingId) params.set("recording", recordingId);
  const socket = new WebSocket(`${config.ws_base}/ws/record?${params}`);
  ws = socket;
  conn(attempt ? `reconnecting (try ${attempt} of ${MAX_TRIES})` : "connecting");
  let opened = false;
  socket.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "recording") {
      opened = true; recordingId = msg.id;
      conn("connected"); notice("");
      for (const index of [...unacked.keys()].sort((a, b) => a - b)) sendChunk(index); // in order
      if (ending) socket.send(JSON.stringify({ action: "end" }));
    } else if (msg.type === "ack") { unacked.delete(msg.index); stats.acked++; counts(); }
    else if (msg.type === "result" && msg.is_final && msg.text) $("live").textContent += ($("live").textContent ? " " : "") + msg.text;
    else if (msg.type === "done") { stats.done = msg; finished(msg); }
    else if (msg.type === "error") {
      if (msg.code === "missing-chunks") msg.missing.forEach(sendChunk);
      else notice(`${msg.code}: ${msg.message || ""}`);
    }
  };
  socket.onclose = (e) => {
    if (ws !== socket) return;
    ws = null;
    if (stats.done) return;
    if (!opened && attempt === 0 && !recordingId) { notice(`Could not start the upload (close ${e.code}): check the token; recordings must be on (transcribe.recordings.enabled).`); stop(true); return; }
    if (attempt >= MAX_TRIES) { conn("disconnected"); notice(`The connection is lost: ${MAX_TRIES} tries failed. ${unacked.size} chunks are still here; press Stop, then Start to try again.`); return; }
    const wait = FIRST_BACKOFF_MS * 2 ** attempt;
    stats.reconnects++;
    conn(`disconnected (close ${e.code}); retrying in ${wait / 1000} s`);
    notice(`The connection dropped; buffering ${unacked.size} chunk(s) and reconnecting in ${wait / 1000} s.`, "info");
    setTimeout(() => open(attempt + 1), wait);
  };
  socket.onopen = () => { attempt = opened ? 0 : attempt; };
}

async function finished(done) {
  conn("done");
  const all = new Uint8Array(stats.chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of stats.chunks) { all.set(c, at); at += c.length; }
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", all)), (b) => b.toString(16).padStart(2, "0")).join("");
  stats.localSha256 = digest;
  $("result").textContent = `Stored ${done.id}: ${done.bytes} bytes in ${done.chunks} chunks; ${digest === done.sha256 ? "the server's copy matches what was recorded (SHA-256)" : "WARNING: the server's copy differs from what was recorded"}.`;
  $("start").disabled = false; $("stop").disabled = true;
  list();
}

async function start() {
  notice("");
  if (!token()) { notice("Recording needs a token (a JWT signed with one of transcribe.jwt_keys)."); $("token").focus(); return; }
  try { capture = await startCapture(await openMic(), onMic); }
  catch (err) { notice(err.message); return; }
  Object.assign(stats, { sent: 0, acked: 0, reconnects: 0, chunks: [], done: null, localSha256: "" });
  recordingId = ""; nextIndex = 0; ending = false; unacked.clear(); samples = []; samplesLen = 0;
  $("live").textContent = ""; $("result").textContent = "";
  open();
  $("start").disabled = true; $("stop").disabled = false;
}

function stop(failed = false) {
  if (capture) { capture.stop(); capture = null; }
  $("stop").disabled = true;
  if (failed) { $("start").disabled = false; return; }
  cut();
  ending = true;
  conn("finishing");
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ action: "end" }));
}

async function list() {
  if (!token()) return;
  const r = await fetch("/recordings", { headers: { Authorization: "Bearer " + token() } });
  if (!r.ok) { notice(`Recordings list: HTTP ${r.status} ${await r.text()}`); return; }
  const { recordings } = await r.json();
  const ul = $("recordings");
  ul.textContent = "";
  for (const rec of recordings.filter((x) => x.endpoint === "upload").reverse()) {
    const li = document.createElement("li");
    li.dataset.id = rec.id;
    li.innerHTML = `<strong></strong> <span class="muted"></span><div class="transcript"></div>`;
    li.querySelector("strong").textContent = rec.id;
    li.querySelector("span").textContent = `${rec.device_id} · ${rec.bytes ?? "?"} bytes`;
    const play = document.createElement("button");
    play.type = "button"; play.className = "secondary"; play.textContent = "Load audio";
    play.setAttribute("aria-label", `Load the audio of recording ${rec.id}`);
    play.addEventListener("click", () => load(rec, li, play));
    li.append(play);
    ul.append(li);
    if (rec.files.includes("transcript.jsonl")) {
      const t = await fetch(`/recordings/${rec.id}/transcript.jsonl`, { headers: { Authorization: "Bearer " + token() } });
      const lines = (await t.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l).text).filter(Boolean);
      li.querySelector(".transcript").textContent = lines.join(" ") || "(no speech)";
    } else li.querySelector(".transcript").textContent = "(no transcript)";
  }
}

async function load(rec, li, button) {
  const r = await fetch(`/recordings/${rec.id}/upload.bin`, { headers: { Authorization: "Bearer " + token() } });
  if (!r.ok) { notice(`Download: HTTP ${r.status}`); return; }
  const pcm = new Int16Array(await r.arrayBuffer());
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.src = URL.createObjectURL(pcm16ToWav(pcm));
  audio.setAttribute("aria-label", `recording ${rec.id}`);
  button.replaceWith(audio);
}

async function init() {
  token = tokenField($("token"));
  showSecureContextNotice();
  config = await loadConfig();
  if (!config.recordings) notice("Recordings are off on this server (transcribe.recordings.enabled).", "info");
  $("start").addEventListener("click", start);
  $("stop").addEventListener("click", () => stop());
  $("refresh").addEventListener("click", list);
  $("token").addEventListener("change", list);
  list();
  document.body.dataset.ready = "1";
}
init().catch((err) => notice(err.message));
