"""The dashboard in a real browser: sign-in, running a program from its page, interim results
and their plot arriving live, cancel, the jobs list updating itself, backends, sign-out, and
another user's 404s. Screenshots of each page go to $QRUNTIME_SCREENSHOTS when it is set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from server_support import get_job, submit

pytestmark = pytest.mark.timeout(120)

JOB_URL = re.compile(r"/ui/jobs/(j-[0-9a-f]+)$")
#: Plotly is 3.5 MB of script, parsed and drawn by a browser that shares two cores with the suite.
PLOT_TIMEOUT_MS = 60_000


def open_signed_in(new_page: Any, token: str, path: str = "/ui/programs") -> Page:
    """A page with the session cookie already set (the sign-in form has its own test)."""
    page = new_page(token)
    page.goto(path)
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    return page


def run_from_program_page(page: Page, program_id: str, inputs: str) -> str:
    """Submit the run form; returns the id of the job whose page it lands on."""
    page.goto(f"/ui/programs/{program_id}")
    page.fill("#inputs", inputs)
    page.click("#run")
    expect(page).to_have_url(JOB_URL)
    match = JOB_URL.search(page.url)
    assert match is not None
    return match.group(1)


def expect_plot_drawn(page: Page, container: str) -> None:
    """Wait for Plotly's script, then for its drawing in ``container``; a failure says which."""
    loaded = "() => typeof window.Plotly !== 'undefined'"
    try:
        page.wait_for_function(loaded, timeout=PLOT_TIMEOUT_MS)
    except PlaywrightTimeoutError:
        pytest.fail(f"/ui/vendor/plotly.min.js did not load within {PLOT_TIMEOUT_MS} ms")
    expect(page.locator(f"{container} .main-svg").first).to_be_visible(timeout=PLOT_TIMEOUT_MS)


def shoot(page: Page, screenshots: Path, name: str) -> None:
    page.screenshot(path=screenshots / f"{name}.png")


def test_sign_in_refuses_a_bad_token_and_keeps_a_good_one_out_of_reach_of_scripts(
    new_page: Any, tokens: dict[str, str], screenshots: Path
) -> None:
    page = new_page()
    page.goto("/ui/jobs")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=/ui/jobs$"))
    shoot(page, screenshots, "sign-in")

    page.fill("#token", "qrt_not-a-real-token")
    page.click("form[action='/ui/sign-in'] button")
    expect(page.locator("#sign-in-error")).to_contain_text("not valid")
    assert page.context.cookies() == []

    page.fill("#token", tokens["alice"])
    page.click("form[action='/ui/sign-in'] button")
    expect(page).to_have_url(re.compile(r"/ui/jobs$"))
    [cookie] = page.context.cookies()
    assert cookie["name"] == "qruntime_session"
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/")
    assert page.evaluate("document.cookie") == ""
    expect(page.locator(".who .user")).to_contain_text("alice")


def test_run_hello_world_from_its_page(
    new_page: Any, tokens: dict[str, str], screenshots: Path
) -> None:
    page = open_signed_in(new_page, tokens["alice"])
    expect(page.locator("#programs")).to_contain_text("hello-world")
    shoot(page, screenshots, "programs")
    page.fill("input[name=q]", "hello")
    page.press("input[name=q]", "Enter")
    expect(page.locator("#programs tbody tr")).not_to_have_count(0)
    for name in page.locator("#programs tbody tr td:first-child a").all_inner_texts():
        assert "hello" in name
    page.click("#programs a:text-is('hello-world')")

    expect(page.locator("h1")).to_contain_text("hello-world")
    expect(page.get_by_label("Parameters")).to_contain_text("iterations")
    expect(page.get_by_label("Backend requirements")).to_contain_text("min_num_qubits")
    expect(page.locator("#source")).to_have_count(0)  # alice does not own it
    expect(page.locator("#visibility-form")).to_have_count(0)
    page.fill("#inputs", '{"iterations": -1}')
    expect(page.locator("#inputs-check")).to_contain_text("iterations should be ≥ 0")
    shoot(page, screenshots, "program")

    page.click("#run")  # the client only warns; the server refuses, next to the form
    expect(page.locator("#run-problems")).to_contain_text("inputs.iterations")
    expect(page.locator("#inputs")).to_have_value('{"iterations": -1}')

    page.fill("#inputs", '{"iterations": 2}')
    page.select_option("#backend", "aer_simulator")
    page.click("#run")
    expect(page).to_have_url(JOB_URL)
    expect(page.locator("#job-status")).to_have_text("DONE", timeout=60_000)
    expect(page.locator("#result")).to_contain_text("All done!")
    expect(page.locator("#interim-count")).to_have_text("2")
    expect(page.locator("#interims tbody tr")).to_have_count(2)
    expect(page.locator("#cancel-form")).to_be_hidden()

    # hello-world publishes counts dictionaries: the latest as a histogram, and the
    # probability of its top outcomes (at most four) at each iteration.
    counts = page.locator("#counts-plot")
    expect(counts.locator(".barlayer .point").first).to_be_visible()
    expect(counts.locator(".g-x2title")).to_have_text("iteration")
    expect(counts.locator(".g-y2title")).to_have_text("probability")
    lines = counts.locator(".scatterlayer .trace")
    expect(lines).not_to_have_count(0)
    assert lines.count() <= 4
    expect(counts.locator(".scatterlayer .trace").first.locator(".point")).to_have_count(2)
    expect(page.locator("#plot-empty")).to_be_hidden()

    collect = "messages => window.qruntimeSeries.collectCounts(messages)"
    messages = [
        {"seq": 1, "data": {"iteration": 0, "counts": {"00": 30, "11": 10}}},
        {"seq": 2, "data": {"note": "no counts here"}},
        {"seq": 3, "data": {"iteration": 1, "counts": {"00": 5, "01": 5, "11": 10}}},
    ]
    assert page.evaluate(collect, messages) == {
        "field": "counts",
        "xLabel": "iteration",
        "latest": {"outcomes": ["11", "00", "01"], "values": [10, 5, 5]},
        "top": [
            {"outcome": "11", "x": [0, 1], "y": [0.25, 0.5]},
            {"outcome": "00", "x": [0, 1], "y": [0.75, 0.25]},
            {"outcome": "01", "x": [0, 1], "y": [0, 0.25]},
        ],
    }
    quasi = [{"seq": 4, "data": {"0x3": 0.6, "0x0": 0.4}}]
    assert page.evaluate(collect, quasi)["latest"] == {
        "outcomes": ["0x3", "0x0"],
        "values": [0.6, 0.4],
    }
    not_counts = [{"seq": 5, "data": {"counts": {"up": 3}}}, {"seq": 6, "data": {"c": {"01": -1}}}]
    assert page.evaluate(collect, not_counts) is None


def test_interim_results_arrive_live_and_are_plotted(
    new_page: Any,
    tokens: dict[str, str],
    alice_api: httpx.Client,
    energy_descent: dict[str, Any],
    screenshots: Path,
) -> None:
    page = open_signed_in(new_page, tokens["alice"])
    job_id = run_from_program_page(page, energy_descent["id"], '{"iterations": 24, "delay": 0.5}')

    # 12 s of job: room for a page and its stream that start slowly under the suite's load.
    expect(page.locator("#interim-count")).to_have_text(re.compile(r"^([3-9]|1\d|2[0-4])$"))
    job = get_job(alice_api, job_id)
    assert job["status"] == "RUNNING" and job["interim_count"] < 24, job
    expect(page.locator("#job-status")).to_have_text("RUNNING")
    expect(page.locator("#result")).to_have_text("Not finished yet.")
    plot = page.locator("#plot")
    expect(plot.locator(".main-svg").first).to_be_visible()
    expect(plot.locator(".g-ytitle")).to_have_text("energy")  # one series: energy...
    expect(plot.locator(".g-xtitle")).to_have_text("iteration")  # ...against iteration
    expect(page.locator("#interim-count")).to_have_text(re.compile(r"^([7-9]|1\d|2[0-4])$"))
    shoot(page, screenshots, "job")

    expect(page.locator("#job-status")).to_have_text("DONE", timeout=60_000)
    expect(page.locator("#interim-count")).to_have_text("24")
    expect(plot.locator(".scatterlayer .point")).to_have_count(24)
    expect(page.locator("#result")).to_contain_text('"iterations": 24')
    expect(page.locator("#log")).to_contain_text("iteration 24: energy")
    expect(page.locator("#ended")).not_to_have_text("—")

    # The rule behind the plot, on messages of other shapes.
    collect = "messages => window.qruntimeSeries.collectSeries(messages)"
    by_index = [
        {"seq": 1, "data": {"i": 0, "ok": True, "label": "a", "nested": {"x": 1}}},
        {"seq": 2, "data": [1, 2]},
        {"seq": 3, "data": {"__type__": "ndarray", "__value__": "..."}},
        {"seq": 4, "data": {"i": 1, "loss": 0.5}},
    ]
    assert page.evaluate(collect, by_index) == {
        "xLabel": "message",
        "series": [{"name": "i", "x": [1, 4], "y": [0, 1]}, {"name": "loss", "x": [4], "y": [0.5]}],
    }
    vqe = [{"seq": 7, "data": {"iteration": 3, "energy": -1.5, "num_evaluations": 9}}]
    assert page.evaluate(collect, vqe) == {
        "xLabel": "iteration",
        "series": [
            {"name": "energy", "x": [3], "y": [-1.5]},
            {"name": "num_evaluations", "x": [3], "y": [9]},
        ],
    }


def test_cancel_a_long_job_and_another_user_gets_404_pages(
    new_page: Any, tokens: dict[str, str], slow_publisher: dict[str, Any]
) -> None:
    page = open_signed_in(new_page, tokens["alice"])
    job_id = run_from_program_page(page, slow_publisher["id"], '{"n": 1000, "delay": 0.2}')
    expect(page.locator("#job-status")).to_have_text("RUNNING")
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("CANCELLED")
    expect(page.locator("#reason")).to_have_text("CANCELLED BY USER")
    expect(page.locator("#cancel")).to_have_count(0)
    expect(page.locator("#result")).to_contain_text("No result")

    other = open_signed_in(new_page, tokens["bob"])
    for path in (f"/ui/jobs/{job_id}", f"/ui/programs/{slow_publisher['id']}"):
        response = other.goto(path)
        assert response is not None and response.status == 404, path
        expect(other.locator("h1")).to_have_text("Not found")
        expect(other.locator("main")).not_to_contain_text("Publishes numbered")  # description
        expect(other.locator("main")).not_to_contain_text("alice")
    other.goto("/ui/jobs")
    expect(other.locator("#jobs")).not_to_contain_text(job_id)


def test_owner_switches_visibility(
    new_page: Any, tokens: dict[str, str], energy_descent: dict[str, Any]
) -> None:
    page = open_signed_in(new_page, tokens["alice"], f"/ui/programs/{energy_descent['id']}")
    expect(page.locator("#source")).to_contain_text("def main(backend, user_messenger")
    expect(page.locator("h1 .badge")).to_have_text("private")
    page.click("#visibility-switch")
    expect(page.locator("h1 .badge")).to_have_text("public")

    other = open_signed_in(new_page, tokens["bob"], f"/ui/programs/{energy_descent['id']}")
    expect(other.locator("h1")).to_contain_text("energy-descent")
    expect(other.locator("#source")).to_have_count(0)
    expect(other.locator("#visibility-form")).to_have_count(0)

    page.click("#visibility-switch")
    expect(page.locator("h1 .badge")).to_have_text("private")
    response = other.reload()
    assert response is not None and response.status == 404


def test_jobs_list_updates_itself_and_filters(
    new_page: Any,
    tokens: dict[str, str],
    alice_api: httpx.Client,
    slow_publisher: dict[str, Any],
    screenshots: Path,
) -> None:
    # Long enough to be live however slowly the page opens; the test ends it itself, so the
    # row's change is the one the test made, not a race with the job's own end (CI: a 1.5 s
    # job was DONE before the page rendered).
    job = submit(alice_api, slow_publisher["id"], {"n": 600, "delay": 0.25})
    page = open_signed_in(new_page, tokens["alice"], "/ui/jobs")
    row = page.locator(f"tr[data-job-id='{job['id']}']")
    expect(row.locator(".badge")).to_have_text(re.compile("QUEUED|RUNNING"))
    page.evaluate("window.sameDocument = true")
    assert alice_api.post(f"/jobs/{job['id']}/cancel").status_code == 200
    expect(row.locator(".badge")).to_have_text("CANCELLED", timeout=30_000)
    assert page.evaluate("window.sameDocument === true")  # updated in place, not reloaded
    expect(row.locator(".ended")).not_to_be_empty()
    shoot(page, screenshots, "jobs")

    page.select_option("#status-filter", "CANCELLED")
    page.click("#job-filters button")
    expect(page).to_have_url(re.compile(r"status=CANCELLED"))
    expect(page.locator("#jobs .badge")).not_to_have_count(0)
    for status in page.locator("#jobs .badge").all_inner_texts():
        assert status == "CANCELLED"
    page.select_option("#status-filter", "")
    page.select_option("#program-filter", slow_publisher["id"])
    page.click("#job-filters button")
    expect(page.locator(f"tr[data-job-id='{job['id']}']")).to_have_count(1)
    for program in page.locator("#jobs tbody td:nth-child(2) .sub").all_inner_texts():
        assert program == slow_publisher["id"]


def test_backends_show_size_gates_noise_and_coupling_map(
    new_page: Any, tokens: dict[str, str], screenshots: Path
) -> None:
    page = open_signed_in(new_page, tokens["alice"], "/ui/backends")
    expect(page.locator("#backends")).to_contain_text("aer_simulator")
    expect(page.locator("#backends")).to_contain_text("fake_sherbrooke")
    shoot(page, screenshots, "backends")

    page.click("#backends a:text-is('fake_sherbrooke')")
    expect(page.locator("#num-qubits")).to_have_text("127")
    expect(page.locator("#noise")).to_contain_text("T1")
    expect(page.locator("#noise")).to_contain_text("Two-qubit gate error")
    expect_plot_drawn(page, "#coupling-map")
    expect(page.locator("#coupling-map .scatterlayer .point")).not_to_have_count(0)
    shoot(page, screenshots, "backend")

    page.goto("/ui/backends/aer_simulator")
    expect(page.get_by_label("Coupling map")).to_contain_text("All-to-all")
    expect(page.get_by_label("Noise")).to_contain_text("no noise")


def test_sign_out_forgets_the_session(new_page: Any, tokens: dict[str, str]) -> None:
    page = open_signed_in(new_page, tokens["alice"])
    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    assert page.context.cookies() == []
    page.goto("/ui/jobs")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))


def test_cluster_page_lists_the_replicas(
    new_page: Any, tokens: dict[str, str], server: Any, screenshots: Path
) -> None:
    health = server.health()
    page = open_signed_in(new_page, server.admin_token, "/ui/backends")
    page.click("nav a:text-is('Cluster')")
    row = page.locator(f"#replicas tr[data-replica-id='{health['replica']}']")
    expect(row).to_contain_text("(serving this page)")
    expect(row).to_contain_text(server.url)
    expect(row).to_contain_text(f"pid {server.process.pid}")
    expect(page.locator("#replicas tbody tr")).to_have_count(1)
    shoot(page, screenshots, "cluster")


def test_cluster_page_keeps_hosts_and_addresses_from_plain_users(
    new_page: Any, tokens: dict[str, str], server: Any
) -> None:
    health = server.health()
    page = open_signed_in(new_page, tokens["alice"], "/ui/cluster")
    row = page.locator(f"#replicas tr[data-replica-id='{health['replica']}']")
    expect(row).to_contain_text("(serving this page)")
    expect(row).not_to_contain_text(server.url)
    expect(row).not_to_contain_text(f"pid {server.process.pid}")
    expect(page.locator("#replicas thead")).not_to_contain_text("Host")
