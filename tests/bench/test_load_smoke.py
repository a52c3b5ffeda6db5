"""``bench/load.py`` in short: 16 jobs from 8 clients, every one streamed, nothing lost.

The smoke run asserts the script's own verdict and counts, never its timings. The verifier
tests feed it a server that lost, duplicated and re-ran jobs, so that "ok" cannot come from a
checker that checks nothing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

LOAD_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "load.py"
SMOKE_JOBS = 16
SMOKE_CLIENTS = 8


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", LOAD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def load() -> ModuleType:
    return load_module()


def test_jobs_from_concurrent_clients_with_open_streams_all_finish_once(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            str(LOAD_SCRIPT),
            "--jobs",
            str(SMOKE_JOBS),
            "--clients",
            str(SMOKE_CLIENTS),
            "--max-concurrent-jobs",
            "2",
            "--progress",
            "0",
            "--timeout",
            "240",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, f"{completed.stdout}\n{completed.stderr}"
    summary = json.loads(completed.stdout)
    assert summary["ok"] is True, summary
    assert summary["problems"] == [] and summary["problem_count"] == 0, summary
    assert summary["jobs"] == summary["submitted"] == summary["done"] == SMOKE_JOBS
    assert summary["clients"] == SMOKE_CLIENTS
    for key in (
        "not_done",
        "unfinished",
        "lost",
        "duplicated",
        "ran_twice_or_bad_interims",
        "wrong_results",
        "stream_mismatches",
        "wait_failed",
    ):
        assert summary[key] == 0, (key, summary)
    assert summary["streamed"] == SMOKE_JOBS  # every job was followed by a callback stream
    for kind in ("submit", "end_to_end"):
        stats = summary["latency_ms"][kind]
        assert stats["count"] == SMOKE_JOBS
        assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"], stats
    assert summary["submit_jobs_per_s"] > 0 and summary["completion_jobs_per_s"] > 0
    assert summary["server"] == {"own": True, "max_concurrent_jobs": 2}


# --- the verifier, against a fake server ------------------------------------------------------


def fake_server(
    jobs: list[dict[str, Any]], interims: dict[str, list[dict[str, Any]]]
) -> httpx.Client:
    """``GET /jobs`` and ``GET /jobs/{id}/interim_results`` as a server that stored these."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/jobs":
            offset = int(request.url.params.get("offset", 0))
            limit = int(request.url.params.get("limit", 10))
            return httpx.Response(
                200, json={"jobs": jobs[offset : offset + limit], "total": len(jobs)}
            )
        job_id = path.split("/")[2]
        if path.endswith("/interim_results") and job_id in interims:
            return httpx.Response(200, json={"interim_results": interims[job_id]})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    return httpx.Client(base_url="http://fake", transport=httpx.MockTransport(handle))


def stored(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"seq": k + 1, "data": v, "creation_date": "2026-01-01T00:00:00Z"}
        for k, v in enumerate(values)
    ]


def finished_record(load: ModuleType, n: int, *, streamed: bool = True) -> Any:
    nonce = f"run-{n}"
    record = load.JobRecord(n=n, nonce=nonce, streamed=streamed)
    record.job_id = f"j-{n}"
    record.submit_start, record.submit_end, record.finished_at = 1.0, 1.1, 3.0
    record.status = "DONE"
    record.result = {"n": n, "nonce": nonce}
    record.seen = load.expected_interims(n, nonce) if streamed else []
    return record


def listed_job(load: ModuleType, record: Any, *, interim_count: int | None = None) -> dict:
    count = len(load.expected_interims(record.n, record.nonce))
    return {
        "id": record.job_id,
        "status": "DONE",
        "reason": None,
        "error_message": None,
        "inputs": {"n": record.n, "nonce": record.nonce},
        "interim_count": count if interim_count is None else interim_count,
    }


def verify(load: ModuleType, records: list[Any], jobs: list[dict], interims: dict) -> dict:
    report = load.ClientReport("alice", records)
    with fake_server(jobs, interims) as http:
        load.verify_client(report, http)
    config = load.LoadConfig(jobs=len(records), clients=1)
    return load.summarize(config, "http://fake", "load-echo-x", "run", [report])


def test_the_verifier_passes_a_clean_run(load):
    records = [finished_record(load, n, streamed=n != 2) for n in range(4)]
    jobs = [listed_job(load, r) for r in records]
    interims = {r.job_id: stored(load.expected_interims(r.n, r.nonce)) for r in records}
    summary = verify(load, records, jobs, interims)
    assert summary["ok"] is True, summary
    assert summary["done"] == 4 and summary["streamed"] == 3
    assert summary["latency_ms"]["end_to_end"]["p50"] == 2000.0


def test_the_verifier_catches_lost_duplicated_rerun_and_short_streams(load):
    good, rerun, lost, short_stream = (finished_record(load, n) for n in range(4))
    records = [good, rerun, lost, short_stream]
    short_stream.seen = short_stream.seen[1:]  # the callback missed the first interim
    twice = load.expected_interims(rerun.n, rerun.nonce) * 2
    extra = listed_job(load, good) | {"id": "j-extra"}  # same inputs, no POST returned it
    jobs = [
        listed_job(load, good),
        listed_job(load, rerun, interim_count=len(twice)),
        listed_job(load, short_stream),
        extra,
    ]
    interims = {r.job_id: stored(load.expected_interims(r.n, r.nonce)) for r in records}
    interims[rerun.job_id] = stored(twice)
    interims["j-extra"] = interims[good.job_id]
    summary = verify(load, records, jobs, interims)
    assert summary["ok"] is False
    assert summary["lost"] == 1, summary
    assert summary["duplicated"] == 2, summary  # the unexpected job, and its repeated nonce
    assert summary["ran_twice_or_bad_interims"] == 1, summary
    # The short stream, and the re-run job (its callback saw one run, the log holds two).
    assert summary["stream_mismatches"] == 2, summary
    text = "\n".join(summary["problems"])
    assert "j-2 (n=2): accepted but not in GET /jobs" in text
    assert "j-extra" in text and "run-0" in text
    assert load.render(summary).startswith("FAILED")


def test_percentiles_use_nearest_rank_in_milliseconds(load):
    stats = load.percentiles([i / 1000 for i in range(1, 101)])
    assert stats == {"count": 100, "p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert load.percentiles([])["p50"] is None
