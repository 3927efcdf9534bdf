"""grpc-go transport: the probe points and frame layouts DESIGN §6 relies on."""

from __future__ import annotations

from otel_goblock.golang import GoBinary

from .conftest import Built, build

T = "google.golang.org/grpc/internal/transport"


def test_goaway_frame_layout(grpc_dwarf: Built) -> None:
    gb = GoBinary(str(grpc_dwarf.path))
    frame = gb.struct("golang.org/x/net/http2.GoAwayFrame")
    assert frame is not None
    assert frame.field("ErrCode").offset == 16 and frame.field("ErrCode").size == 4
    assert frame.field("debugData").offset == 24 and frame.field("debugData").size == 24
    assert gb.field_offset("golang.org/x/net/http2.GoAwayFrame", "FrameHeader.StreamID") == 8
    client = gb.struct(f"{T}.http2Client")
    assert client is not None and client.has("loopy") and client.has("conn")


def test_transport_probe_points(toolchain: str) -> None:
    """Present as symbols: write/handleGoAway/...; inlined (absent): writeQuota.get,
    controlBuffer.throttle; `.Write` is the <=1.68 name, gone in the linked grpc."""
    for stripped in (False, True):
        gb = GoBinary(str(build(toolchain, "grpcclient", stripped=stripped).path))
        version = gb.module_version("google.golang.org/grpc")
        assert version is not None and version.startswith("v1.")
        for name in (
            "(*http2Client).write",
            "(*http2Client).handleGoAway",
            "(*http2Client).handleWindowUpdate",
            "(*http2Client).handlePing",
            "(*http2Client).keepalive",
            "(*loopyWriter).incomingWindowUpdateHandler",
            "(*loopyWriter).pingHandler",
        ):
            assert gb.symbols.function(f"{T}.{name}") is not None, name
            assert gb.ret_probes(f"{T}.{name}"), name
        for name in ("(*writeQuota).get", "(*controlBuffer).throttle", "(*http2Client).Write"):
            assert gb.symbols.function(f"{T}.{name}") is None, name
