"""The SDK builds each request's absolute URL itself: it must be the URL httpx's own merge of
the path and parameters with ``base_url`` gives."""

import httpx
import pytest

from qruntime.client.transport import ApiClient

CASES = [
    ("/jobs", None),
    ("/jobs", {}),
    ("/jobs/j-1/stream", {"since": 0}),
    ("/jobs/j-1/stream", {"since": 12}),
    ("/programs", {"limit": 1000, "offset": 0}),
    ("/jobs", {"pending": True, "program_id": "hello world/ä", "limit": 5}),
    ("/programs/hello-world-abc123", None),
]


@pytest.mark.parametrize("base", ["http://qruntime.test", "http://h:8000/", "https://h/prefix/"])
@pytest.mark.parametrize(("path", "params"), CASES)
def test_the_url_is_the_one_httpx_merges(base, path, params):
    api = ApiClient(base, "qrt_token", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    merged = httpx.Client(base_url=base.rstrip("/")).build_request("GET", path, params=params)
    assert api._url(path, params) == merged.url
    assert api._url(path, params) == merged.url  # the kept one too


def test_a_request_goes_to_that_url_with_its_parameters():
    seen = []
    api = ApiClient(
        "http://qruntime.test/",
        "qrt_token",
        transport=httpx.MockTransport(lambda r: seen.append(r.url) or httpx.Response(200, json={})),
    )
    api.get_json("/programs", limit=5, offset=None)
    api.request("POST", "/jobs", json={"x": 1})
    assert [str(url) for url in seen] == [
        "http://qruntime.test/programs?limit=5",
        "http://qruntime.test/jobs",
    ]
