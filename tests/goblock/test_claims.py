"""Claims: the windows joined spans covered, per goroutine and for the whole process. The
unjoined pass asks "did a span claim this wait?" for every candidate; the answer kept as
merged windows (one bisect) must be the answer of testing each claimed interval, and
forgetting old claims must never drop a claim that is still live."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from otel_goblock.processors.goblock.timeline import ProcTimeline, Windows

# small times, so that intervals touch, nest and have zero length often
interval = st.tuples(st.integers(0, 40), st.integers(0, 12)).map(lambda t: (t[0], t[0] + t[1]))


def _overlaps(intervals: list[tuple[int, int]], s: int, e: int) -> bool:
    return any(a < e and s < b for a, b in intervals)


@settings(max_examples=400, deadline=None)
@given(st.lists(interval, max_size=30), st.lists(interval, min_size=1, max_size=30))
@example(added=[(0, 5), (5, 10)], queries=[(5, 5)])  # touching: no claim holds the instant 5
@example(added=[(5, 5), (0, 10)], queries=[(5, 5), (4, 6)])  # an instant inside a window
def test_windows_answer_as_testing_each_interval(
    added: list[tuple[int, int]], queries: list[tuple[int, int]]
) -> None:
    w = Windows()
    for a, b in added:
        w.add(a, b)
    assert w.starts == sorted(w.starts) and w.ends == sorted(w.ends)
    for s, e in queries:
        assert w.overlaps(s, e) == _overlaps(added, s, e), (s, e)


claim = st.tuples(st.just("claim"), interval, st.sets(st.integers(1, 3), max_size=2))
step = st.one_of(claim, claim, claim, st.tuples(st.just("forget"), st.integers(0, 15)))


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=60), st.lists(interval, min_size=1, max_size=20))
# a claim that ends at the cutoff is live
@example(steps=[("claim", (0, 4), {1}), ("claim", (0, 0), set()), ("forget", 0)], queries=[(0, 1)])
def test_forgetting_keeps_every_live_claim(steps: list[tuple], queries: list[tuple]) -> None:
    """Claims shift later as the run goes on (like spans); a forget drops what ended before
    its cutoff. Whatever is still live must be found; what was never claimed must not."""
    tl = ProcTimeline(1)
    ever: dict[int, list[tuple[int, int]]] = {0: []}
    cutoff = t = 0
    for st_ in steps:
        if st_[0] == "claim":
            (a, b), goids = st_[1], st_[2]
            a, b = a + t, b + t
            t += 2
            tl.claim(a, b, sorted(goids))
            for g in (0, *goids):
                ever.setdefault(g, []).append((a, b))
        else:
            cutoff = max(cutoff, t - st_[1])
            tl.forget_claims(cutoff)
    for g, claimed in ever.items():
        live = [(a, b) for a, b in claimed if b >= cutoff]
        for s, e in queries:
            s, e = s + t // 2, e + t // 2
            got = tl.claimed(g, s, e)
            if _overlaps(live, s, e):
                assert got, (g, s, e)
            if not _overlaps(claimed, s, e):
                assert not got, (g, s, e)


def test_an_entry_left_over_from_merged_windows_does_not_drop_a_newer_claim() -> None:
    """Goroutine 1's two claims merge into one window; a long span of goroutine 2 keeps
    the second one's entry waiting in the join order. By then goroutine 1 has a new claim:
    that entry must not take it along."""
    tl = ProcTimeline(1)
    tl.claim(0, 30, [1])
    tl.claim(0, 1000, [2])
    tl.claim(20, 40, [1])  # merges with [0, 30]; its entry waits behind goroutine 2's
    tl.forget_claims(50)  # drops goroutine 1's window [0, 40]; stops at goroutine 2's entry
    assert not tl.claimed(1, 10, 20)
    tl.claim(60, 2000, [1])
    tl.forget_claims(1001)  # goroutine 2's entry, then goroutine 1's left-over one
    assert tl.claimed(1, 100, 200)
    assert not tl.claimed(2, 100, 200)
