// Renders one final result: text with entities highlighted, confidence and N-best.
import { escapeHtml } from "/static/common.js";

export function highlighted(text, entities = []) {
  let out = "", at = 0;
  for (const e of [...entities].sort((a, b) => a.start - b.start)) {
    if (typeof e.start !== "number" || e.start < at || e.end > text.length) continue;
    out += escapeHtml(text.slice(at, e.start));
    out += `<mark class="entity" title="${escapeHtml(e.type)}: ${escapeHtml(e.value)}">${escapeHtml(text.slice(e.start, e.end))}</mark>`;
    at = e.end;
  }
  return out + escapeHtml(text.slice(at));
}

export function segmentItem(result) {
  const li = document.createElement("li");
  li.dataset.segment = result.segment;
  let html = `<span class="text">${highlighted(result.text, result.entities)}</span>`;
  if (typeof result.confidence === "number") html += ` <span class="conf">confidence ${result.confidence.toFixed(2)}</span>`;
  if (result.rejected) html += ` <span class="conf">(rejected)</span>`;
  if (Array.isArray(result.nbest) && result.nbest.length > 1)
    html += `<details><summary>N-best (${result.nbest.length})</summary><ol>${result.nbest.map((n) => `<li>${escapeHtml(n.text)}${typeof n.confidence === "number" ? ` <span class="conf">${n.confidence.toFixed(2)}</span>` : ""}</li>`).join("")}</ol></details>`;
  li.innerHTML = html;
  return li;
}
