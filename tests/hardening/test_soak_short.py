"""The soak (benchmarks/soak.py) in its CI-short form: 45 s of steady load on the demo
service with every probe on. Asserts what a short run can: every span the demo sent is
in the output (sent == received, nothing refused), no load request failed, and the
pipeline's RSS stays bounded. RSS growth and latency need the long run (scripts/soak.sh)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ebpf"))
from ebpf_harness import require_ebpf
from soak import run_soak, summary

RSS_LIMIT_MIB = 400


@pytest.mark.e2e
@pytest.mark.ebpf
def test_short_soak_sent_equals_received_and_rss_bounded(tmp_path: Path) -> None:
    require_ebpf()
    res = run_soak(tmp_path, minutes=0.75, rate=50, baseline_s=5, sample_s=3, log=lambda _: None)
    print(summary(res))
    assert res.errors == 0
    assert res.requests_on > 1000
    assert res.spans_written == res.spans_expected, summary(res)
    assert res.spans_accepted == res.spans_written, summary(res)
    assert res.events_received > 0  # the probes really were on
    assert max(res.rss_mib) < RSS_LIMIT_MIB, summary(res)
