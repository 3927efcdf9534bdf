"""Random bodies and headers against a running receiver: every answer is one of the documented
statuses (never a 500, never a hang) and the server keeps serving.

200 is allowed: random bytes are sometimes a valid protobuf (unknown fields only, or an
empty request), which the collector accepts as well.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import RunningReceiver, both
from .test_bad_input import GOOD, METRICS, TRACES

HTTP_OK = {200, 400, 413, 415}


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[RunningReceiver, requests.Session]]:
    r = RunningReceiver(both(http={"max_request_body_size": 4096}), ("traces", "metrics"))
    s = requests.Session()
    yield r, s
    s.close()
    r.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "name",
                    "resourceMetrics",
                    "metrics",
                    "gauge",
                    "dataPoints",
                    "exemplars",
                    "attributes",
                    "key",
                    "value",
                    "kind",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b)


bodies = st.one_of(
    st.binary(max_size=6000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6).map(
        lambda e: mutate(GOOD, e)
    ),
)
content_types = st.sampled_from(
    [
        "application/x-protobuf",
        "application/json",
        "text/plain",
        "",
        "application/json; charset=utf-8",
    ]
)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=bodies,
    ctype=content_types,
    path=st.sampled_from(["/v1/traces", "/v1/metrics"]),
    encoding=st.sampled_from(["", "gzip", "gzip-lie"]),
)
def test_random_http_bodies_get_documented_statuses(
    fuzz_target: tuple[RunningReceiver, requests.Session],
    body: bytes,
    ctype: str,
    path: str,
    encoding: str,
) -> None:
    r, session = fuzz_target
    headers = {"Content-Type": ctype} if ctype else {}
    if encoding == "gzip":
        body = gzip.compress(body)
    if encoding:
        headers["Content-Encoding"] = "gzip"  # "gzip-lie": claims gzip, sends plain bytes
    resp = session.post(r.http_url(path), data=body, headers=headers, timeout=10)
    assert resp.status_code in HTTP_OK, (resp.status_code, resp.text)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, method=st.sampled_from([TRACES, METRICS]))
def test_random_grpc_bodies_get_ok_or_invalid_argument(
    fuzz_target: tuple[RunningReceiver, requests.Session], body: bytes, method: str
) -> None:
    r, _ = fuzz_target
    with grpc.insecure_channel(r.grpc_target) as ch:
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            call(body, timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e


def test_still_serving_after_fuzzing(fuzz_target: tuple[RunningReceiver, Any]) -> None:
    r, session = fuzz_target
    before = len(r.consumer.traces)
    resp = session.post(
        r.http_url(), data=GOOD, headers={"Content-Type": "application/x-protobuf"}, timeout=10
    )
    assert resp.status_code == 200
    assert len(r.consumer.traces) == before + 1


# printable ASCII without leading/trailing blanks (the client refuses those itself)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
) | st.sampled_from(["gzip", "deflate", "br", "identity", "gzip, gzip", "GZIP", "x-gzip"])
header_names = st.sampled_from(
    [
        "Content-Type",
        "Content-Encoding",
        "Accept",
        "Accept-Encoding",
        "Authorization",
        "User-Agent",
        "Expect",
        "Connection",
        "X-Forwarded-For",
        "traceparent",
        "X-Custom",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(headers=st.dictionaries(header_names, header_values, max_size=5))
def test_random_http_headers_get_documented_statuses(
    fuzz_target: tuple[RunningReceiver, requests.Session], headers: dict[str, str]
) -> None:
    """A valid body under random headers (framing headers left to the client): a
    documented status, and a 200 really delivered the request."""
    r, session = fuzz_target
    if headers.get("Expect", "").lower().startswith("100"):
        headers.pop("Expect")  # the client would wait for an interim response
    before = len(r.consumer.traces)
    resp = session.post(r.http_url(), data=GOOD, headers=headers, timeout=10)
    assert resp.status_code in HTTP_OK, (resp.status_code, resp.text, headers)
    if resp.status_code == 200:
        assert len(r.consumer.traces) == before + 1, headers


metadata_keys = st.from_regex(r"\A[a-z][a-z0-9_.-]{0,20}\Z").filter(
    lambda k: (
        not k.startswith("grpc-")
        and not k.endswith("-bin")
        and k not in ("te", "content-type", "user-agent")
    )
)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    metadata=st.lists(
        st.tuples(metadata_keys, header_values),
        max_size=5,
    )
)
def test_random_grpc_metadata_is_ignored(
    fuzz_target: tuple[RunningReceiver, requests.Session], metadata: list[tuple[str, str]]
) -> None:
    r, _ = fuzz_target
    before = len(r.consumer.traces)
    with grpc.insecure_channel(r.grpc_target) as ch:
        call = ch.unary_unary(TRACES, request_serializer=None, response_deserializer=None)
        call(GOOD, metadata=metadata, timeout=10)
    assert len(r.consumer.traces) == before + 1
