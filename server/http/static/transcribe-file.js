// Transcribe a file: decode in the browser (decodeAudioData + OfflineAudioContext → 16 kHz mono
// float32), stream it to the sherpa-compatible endpoint in 0.5 s chunks, show segments with times.
import { loadConfig, notice } from "/static/common.js";

const $ = (id) => document.getElementById(id);
const RATE = 16000, CHUNK_S = 0.5;
let config;

export async function decodeTo16k(arrayBuffer) {
  const probe = new AudioContext();
  let decoded;
  try { decoded = await probe.decodeAudioData(arrayBuffer); }
  finally { probe.close(); }
  const length = Math.ceil(decoded.duration * RATE);
  const offline = new OfflineAudioContext(1, length, RATE);
  const source = offline.createBufferSource();
  source.buffer = decoded; // channels are mixed down to the context's one channel
  source.connect(offline.destination);
  source.start();
  const rendered = await offline.startRendering();
  return rendered.getChannelData(0);
}

const stamp = (s, sep) => {
  const ms = Math.round(s * 1000), h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, sec = Math.floor(ms / 1000) % 60;
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}${sep}${String(ms % 1000).padStart(3, "0")}`;
};

function render(segments) {
  const body = $("segments");
  body.textContent = "";
  for (const s of segments) {
    const tr = body.insertRow();
    tr.insertCell().textContent = stamp(s.start, ".");
    tr.insertCell().textContent = stamp(s.end, ".");
    tr.insertCell().textContent = s.text;
  }
  const txt = segments.map((s) => s.text).join("\n") + "\n";
  const srt = segments.map((s, i) => `${i + 1}\n${stamp(s.start, ",")} --> ${stamp(s.end, ",")}\n${s.text}\n`).join("\n");
  for (const [id, text, type] of [["download-txt", txt, "text/plain"], ["download-srt", srt, "application/x-subrip"]]) {
    const a = $(id);
    if (a.href) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(new Blob([text], { type }));
    a.hidden = segments.length === 0;
  }
}

async function transcribe() {
  notice("");
  const file = $("file").files[0];
  if (!file) return;
  $("go").disabled = true;
  $("status").textContent = "decoding…";
  let samples;
  try { samples = await decodeTo16k(await file.arrayBuffer()); }
  catch (err) { notice(`Could not decode ${file.name}: ${err.message || err}. Use WAV, MP3 or OGG.`); $("go").disabled = false; $("status").textContent = ""; return; }
  const chunk = Math.round(CHUNK_S * RATE), total = Math.ceil(samples.length / chunk);
  $("status").textContent = `sending ${(samples.length / RATE).toFixed(1)} s of audio`;
  const segments = [];
  let answered = 0, firstHeard = new Map();
  const ws = new WebSocket(`${config.ws_base}/`);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve) => {
    ws.onopen = () => {
      for (let i = 0; i < total; i++) ws.send(samples.slice(i * chunk, (i + 1) * chunk).buffer);
      ws.send("Done");
    };
    ws.onmessage = (e) => {
      if (e.data === "Done!") return;
      const msg = JSON.parse(e.data);
      const at = Math.min(samples.length / RATE, (answered + 1) * CHUNK_S);
      if (msg.is_final) {
        if (msg.text) segments.push({ start: firstHeard.get(msg.segment) ?? Math.max(0, at - CHUNK_S), end: at, text: msg.text });
        render(segments);
        return;
      }
      answered++; // one trailing message per audio message
      if (msg.text && !firstHeard.has(msg.segment)) firstHeard.set(msg.segment, Math.max(0, at - 2 * CHUNK_S));
      $("progress").value = Math.min(1, answered / total);
    };
    ws.onclose = (e) => {
      if (e.code !== 1000) notice(`The server closed the connection: ${e.code} ${e.reason}`);
      resolve();
    };
  });
  $("progress").value = 1;
  render(segments);
  $("status").textContent = `done: ${segments.length} segment${segments.length === 1 ? "" : "s"}`;
  $("go").disabled = false;
}

async function init() {
  config = await loadConfig();
  $("file").addEventListener("change", () => { $("go").disabled = !$("file").files.length; });
  $("go").addEventListener("click", transcribe);
  document.body.dataset.ready = "1";
}
init().catch((err) => notice(err.message));
