// Transcribe live: microphone → sherpa-compatible endpoint (float32) or the sequenced protocol.
import { floatToPcm16, loadConfig, notice, openMic, rms, showSecureContextNotice, startCapture, tokenField } from "/static/common.js";
import { segmentItem } from "/static/transcript-view.js";

const $ = (id) => document.getElementById(id);
const CHUNK_SAMPLES = 1600; // 100 ms per message
let config, ws = null, capture = null, pending = [], pendingLen = 0, seq = 0, token;

function status(text) { $("status").textContent = text; }

function showFinal(result) {
  const old = $("segments").querySelector(`li[data-segment="${result.segment}"]`);
  const li = segmentItem(result);
  old ? old.replaceWith(li) : $("segments").append(li);
  $("partial").textContent = "";
}

function onMessage(text) {
  if (text === "Done!") return;
  const msg = JSON.parse(text);
  if (msg.type === "error") { notice(`${msg.code}: ${msg.message}`); return; }
  if (msg.type && msg.type !== "result") return; // control/heartbeat
  if (msg.is_final) { if (msg.text) showFinal(msg); }
  else $("partial").textContent = msg.text;
}

function flush(force = false) {
  while (pendingLen >= CHUNK_SAMPLES || (force && pendingLen > 0)) {
    const all = new Float32Array(pendingLen);
    let at = 0;
    for (const p of pending) { all.set(p, at); at += p.length; }
    const n = Math.min(CHUNK_SAMPLES, all.length);
    const chunk = all.slice(0, n);
    pending = [all.slice(n)]; pendingLen = all.length - n;
    if (ws?.readyState !== WebSocket.OPEN) continue;
    if ($("protocol").value === "sherpa") ws.send(chunk.buffer);
    else {
      const pcm = floatToPcm16(chunk);
      ws.send(JSON.stringify({ type: "audio", seq: seq, timestamp: Math.round((seq * CHUNK_SAMPLES) / 16), data_length: pcm.byteLength }));
      ws.send(pcm.buffer);
      seq++;
    }
  }
}

async function start() {
  notice("");
  const sequenced = $("protocol").value === "sequenced";
  if (sequenced && !token()) { notice("The sequenced protocol needs a token (a JWT signed with one of transcribe.jwt_keys)."); $("token").focus(); return; }
  try { capture = await startCapture(await openMic(), (s) => { $("level").value = Math.min(1, rms(s) * 4); pending.push(s); pendingLen += s.length; flush(); }); }
  catch (err) { notice(err.message); return; }
  seq = 0; pending = []; pendingLen = 0;
  $("segments").textContent = ""; $("partial").textContent = "";
  const url = sequenced ? `${config.ws_base}/ws/asr?token=${encodeURIComponent(token())}` : `${config.ws_base}/`;
  ws = sequenced ? new WebSocket(url, "asr-protocol-v1") : new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => status("listening");
  ws.onmessage = (e) => typeof e.data === "string" && onMessage(e.data);
  ws.onclose = (e) => {
    status(e.code === 1000 ? "done" : `closed (${e.code}${e.reason ? ": " + e.reason : ""})`);
    if (e.code !== 1000) notice(`The connection closed: ${e.code} ${e.reason || "(could not connect? a wrong or missing token gives HTTP 401)"}`);
    ws = null; stopCapture();
  };
  $("start").disabled = true; $("stop").disabled = false;
}

function stopCapture() {
  if (capture) { capture.stop(); capture = null; }
  $("start").disabled = false; $("stop").disabled = true;
}

function stop() {
  flush(true);
  stopCapture();
  if (ws?.readyState === WebSocket.OPEN) {
    status("finishing");
    ws.send($("protocol").value === "sherpa" ? "Done" : JSON.stringify({ type: "control", action: "end" }));
  }
}

async function init() {
  token = tokenField($("token"));
  if (new URLSearchParams(location.search).get("protocol")) $("protocol").value = new URLSearchParams(location.search).get("protocol");
  showSecureContextNotice();
  config = await loadConfig();
  $("start").addEventListener("click", start);
  $("stop").addEventListener("click", stop);
  document.body.dataset.ready = "1";
}
init().catch((err) => notice(err.message));
