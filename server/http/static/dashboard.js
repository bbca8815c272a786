// Dashboard: /api/dashboard drawn as inline SVG (no chart library).
import { escapeHtml, notice } from "/static/common.js";

const $ = (id) => document.getElementById(id);
// Stacked parts of one turn (sum = speech end → first reply frame); "sending" is derived.
const STAGES = [
  ["vad_hangover", "speech end → end detected", "#7aa6e0"],
  ["asr_finalise", "end detected → transcript", "#e0a33a"],
  ["first_sentence_synthesised", "transcript → first sentence synthesised (dialogue + TTS)", "#4caf7a"],
  ["sending", "→ first frame sent", "#9c6ade"],
];
const part = (t, key) => key === "sending"
  ? Math.max(0, (t.stages.first_frame_sent || 0) - (t.stages.first_sentence_synthesised || 0))
  : t.stages[key] || 0;
// Charts are drawn in CSS pixels of their current width, so labels stay readable on a phone.
const widthOf = (svg) => Math.max(280, Math.round(svg.getBoundingClientRect().width || 400));
const ms = (s) => `${Math.round(s * 1000)} ms`;

function histogram(h) {
  const svg = $("histogram");
  const W = widthOf(svg);
  svg.setAttribute("viewBox", `0 0 ${W} 172`);
  const buckets = h.buckets.filter((b) => b.le !== null || b.count > 0);
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const w = W / Math.max(1, buckets.length);
  let out = "";
  buckets.forEach((b, i) => {
    const height = (b.count / max) * 130;
    const label = b.le === null ? "∞" : b.le < 1 ? `${b.le * 1000}` : `${b.le}s`;
    out += `<rect x="${i * w + 2}" y="${150 - height}" width="${w - 4}" height="${height}" fill="#0b62c4"><title>≤ ${label}: ${b.count}</title></rect>`;
    if (b.count) out += `<text x="${i * w + w / 2}" y="${145 - height}" font-size="12" text-anchor="middle">${b.count}</text>`;
    if (i % (W < 500 ? 3 : 2) === 0) out += `<text x="${i * w + w / 2}" y="166" font-size="11" text-anchor="middle" fill="#5b6570">${label}</text>`;
  });
  svg.innerHTML = out;
  $("histogram-note").textContent = `Bucket upper bounds in ms (s where marked) · ${h.count} turn${h.count === 1 ? "" : "s"}${h.count ? ` · mean ${ms(h.sum_s / h.count)}` : ""}`;
}

function breakdown(turns) {
  const svg = $("breakdown");
  if (!turns.length) { svg.innerHTML = `<text x="10" y="30" font-size="14" fill="#5b6570">No turns yet.</text>`; return; }
  const total = (t) => STAGES.reduce((n, [k]) => n + part(t, k), 0);
  const max = Math.max(0.001, ...turns.map(total));
  const barH = 20;
  const W = widthOf(svg), left = 62, right = 64;
  let out = "";
  turns.forEach((t, i) => {
    let x = left;
    const y = i * (barH + 3) + 4;
    const when = new Date(t.at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
    out += `<text x="0" y="${y + barH * 0.75}" font-size="11"><title>turn ${t.turn_id} of its session</title>${when}</text>`;
    for (const [key, label, color] of STAGES) {
      const v = part(t, key);
      const width = (v / max) * (W - left - right);
      out += `<rect class="stage" data-stage="${key}" x="${x}" y="${y}" width="${width}" height="${barH}" fill="${color}"><title>${label}: ${ms(v)}</title></rect>`;
      x += width;
    }
    out += `<text x="${x + 4}" y="${y + barH * 0.75}" font-size="11">${ms(total(t))}</text>`;
  });
  svg.setAttribute("viewBox", `0 0 ${W} ${turns.length * (barH + 3) + 8}`);
  svg.innerHTML = out;
  $("legend").innerHTML = STAGES.map(([, label, color]) => `<span style="color:${color}">■</span> ${escapeHtml(label)}`).join(" &nbsp; ");
}

function table(id, rows) {
  const body = $(id);
  body.textContent = "";
  for (const cells of rows) {
    const tr = body.insertRow();
    for (const c of cells) tr.insertCell().textContent = c;
  }
}

async function refresh() {
  try {
    const r = await fetch("/api/dashboard");
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const d = await r.json();
    $("sessions").textContent = d.sessions + (d.mqtt ? ` (+${d.mqtt.boards} MQTT)` : "");
    $("turns").textContent = d.turns;
    $("status").textContent = d.status;
    $("providers").textContent = Object.entries(d.providers || {}).map(([k, v]) => `${k}: ${v}`).join(" · ");
    histogram(d.latency);
    breakdown(d.recent_turns.slice(-10));
    table("devices", d.devices.map((x) => [x.device_id, x.board || "", x.firmware || "", new Date(x.last_seen * 1000).toLocaleTimeString()]));
    const errors = Object.entries(d.errors).sort((a, b) => b[1] - a[1]);
    table("errors", errors.length ? errors : [["none", "0"]]);
    notice("");
    document.body.dataset.loaded = String(Date.now());
  } catch (err) { notice(`Could not load the dashboard: ${err.message}`); }
}

refresh();
addEventListener("resize", () => refresh());
setInterval(() => $("auto").checked && refresh(), 2000);
document.body.dataset.ready = "1";
