// Shared by every page: server config, the secure-context notice, the microphone, 16 kHz capture.
// No build step: plain ES modules served from /static/.

export const SAMPLE_RATE = 16000;

/** GET /api/pages: {ws_base, assistant_path, tls, recordings, transcribe}. */
export async function loadConfig() {
  const r = await fetch("/api/pages");
  if (!r.ok) throw new Error(`server config: HTTP ${r.status}`);
  return r.json();
}

/** Browsers give the microphone only to secure pages (https, or localhost). */
export function secureContextProblem() {
  if (window.isSecureContext && navigator.mediaDevices?.getUserMedia) return null;
  const https = "https://" + location.host + location.pathname;
  return (
    "The microphone needs a secure page: this one was opened over plain http from another " +
    `machine (${location.host}). Open ${https} instead (the server's TLS: xiaozhi-server cert, ` +
    "security.tls.enabled), or open the page on the server itself as http://localhost."
  );
}

/** Show the notice in the page's #notice element (role=alert); returns whether one is shown. */
export function showSecureContextNotice() {
  const problem = secureContextProblem();
  if (problem) notice(problem);
  return problem !== null;
}

export function notice(text, kind = "error") {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.className = "notice " + kind;
  el.hidden = !text;
}

/** A message a person can act on, for a getUserMedia failure. */
export function micErrorText(err) {
  const name = err?.name || "";
  if (name === "NotAllowedError" || name === "SecurityError")
    return "Microphone access was denied. Allow the microphone for this site (the lock/camera " +
      "icon in the address bar) and try again.";
  if (name === "NotFoundError" || name === "OverconstrainedError")
    return "No microphone was found. Plug one in (or enable it in the system settings) and try again.";
  if (name === "NotReadableError")
    return "The microphone is in use by another program or could not be started.";
  return `The microphone could not be opened: ${err?.message || err}`;
}

/** getUserMedia with echo cancellation; throws Error(micErrorText) on failure. */
export async function openMic() {
  const problem = secureContextProblem();
  if (problem) throw new Error(problem);
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
  } catch (err) {
    throw new Error(micErrorText(err));
  }
}

/**
 * Capture `stream` as 16 kHz mono float32 chunks; `onChunk(Float32Array)` about every 20 ms.
 * Returns {stop(), context}.
 */
export async function startCapture(stream, onChunk) {
  const context = new AudioContext({ sampleRate: SAMPLE_RATE });
  await context.audioWorklet.addModule("/static/capture-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "capture-16k");
  node.port.onmessage = (e) => onChunk(e.data);
  source.connect(node);
  const sink = context.createGain();
  sink.gain.value = 0; // keeps the graph pulled without echoing the microphone
  node.connect(sink).connect(context.destination);
  await context.resume();
  return {
    context,
    stop() {
      source.disconnect();
      node.disconnect();
      stream.getTracks().forEach((t) => t.stop());
      context.close();
    },
  };
}

export function floatToPcm16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
  }
  return out;
}

export function pcm16ToWav(pcm, rate = SAMPLE_RATE) {
  const bytes = pcm.byteLength;
  const buf = new ArrayBuffer(44 + bytes);
  const v = new DataView(buf);
  const text = (at, s) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); v.setUint32(4, 36 + bytes, true); text(8, "WAVE"); text(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true);
  v.setUint16(34, 16, true); text(36, "data"); v.setUint32(40, bytes, true);
  new Uint8Array(buf, 44).set(new Uint8Array(pcm.buffer, pcm.byteOffset, bytes));
  return new Blob([buf], { type: "audio/wav" });
}

export function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Root-mean-square level of a chunk (0..1). */
export function rms(samples) {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / Math.max(1, samples.length));
}

/** A JWT for /ws/asr, /ws/record and /recordings: ?token= in the page URL, else the saved one. */
export function tokenField(input) {
  const fromUrl = new URLSearchParams(location.search).get("token");
  input.value = fromUrl || localStorage.getItem("xiaozhi.jwt") || "";
  input.addEventListener("change", () => localStorage.setItem("xiaozhi.jwt", input.value.trim()));
  return () => input.value.trim();
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
