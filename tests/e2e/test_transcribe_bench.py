"""The transcription capacity benchmark runs (quick) and reports every column it promises."""

from __future__ import annotations

from bench import transcribe


def test_quick_run_reports_latencies_per_engine() -> None:
    result = transcribe.run(quick=True)
    rows = result["rows"]
    assert {(r["engine"], r["batching"]) for r in rows} >= {("pocketsphinx", "-")}
    for row in rows:
        assert row["errors"] == 0
        assert row["partial_p95_ms"] is not None and row["final_p95_ms"] is not None
    assert all(
        r["text"] == "turn on the kitchen lamp" for r in rows if r["engine"] == "pocketsphinx"
    )
    assert set(result["capacity_streams"]) == {f"{r['engine']}/{r['batching']}" for r in rows}
