"""Recs, a key's packed records: the partial re-sort (only from where the out-of-order
appends reach back) must leave the records, the bisect index and every query exactly as a
full stable sort would. Random appends (mostly in order, some late, like events of one
thread arriving from several rings), interleaved with the queries the join makes."""

from __future__ import annotations

from itertools import accumulate

from hypothesis import given, settings
from hypothesis import strategies as st
from otel_goblock.processors.goblock.timeline import Recs


class FullSortRecs(Recs):
    """The reference: every sort starts from record 0 (the whole list, stable)."""

    __slots__ = ()

    def sort(self) -> None:  # type: ignore[override]
        self.nsorted = 0
        super().sort()


def _check_index(r: Recs) -> None:
    if r.starts is None:
        return
    assert list(r.starts) == [x[0] for x in r]
    running = list(accumulate((x[1] for x in r), max))
    assert r.maxends is not None
    assert all(m >= t for m, t in zip(r.maxends, running, strict=True))


add = st.tuples(st.just("add"), st.integers(-40, 5), st.integers(0, 12), st.integers(0, 3))
ops = st.lists(
    st.one_of(
        # mostly appends, so that lists grow past the few records kept without an index
        *[add] * 8,
        # query times relative to the latest append: the join asks about the recent past
        st.tuples(st.just("overlapping"), st.integers(0, 120), st.integers(0, 60)),
        st.tuples(st.just("index_before"), st.integers(0, 120)),
        st.tuples(st.just("expire"), st.integers(60, 400)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_partial_resort_equals_a_full_stable_sort(steps: list[tuple]) -> None:
    new, ref = Recs(), FullSortRecs()
    t = 0
    for n, step in enumerate(steps):
        if step[0] == "add":
            _, back, length, tid = step
            t += 3
            start = max(0, t + back)  # back < 0: an append that arrives late
            for r in (new, ref):
                r.add_rec(start, start + length, 1, f"d{n}", tid, 0)
        elif step[0] == "overlapping":
            _, back, w = step
            a = t - back
            assert sorted(new.overlapping(a, a + w), key=repr) == sorted(
                ref.overlapping(a, a + w), key=repr
            )
        elif step[0] == "index_before":
            assert new.index_before(t - step[1]) == ref.index_before(t - step[1])
        else:
            assert new.expire(t - step[1]) == ref.expire(t - step[1])
        if new.ordered and ref.ordered:
            assert list(new) == list(ref)
            _check_index(new)
    new.sort()
    ref.sort()
    assert list(new) == list(ref)
    assert [x[0] for x in new] == sorted(x[0] for x in new)
    _check_index(new)


def test_a_late_append_re_sorts_only_the_records_it_reaches_back_to() -> None:
    r = Recs()
    for i in range(100):
        r.add_rec(i * 10, i * 10 + 5, 1, i, 7, 0)
    r.index_before(500)  # a long list: its bisect index is built
    assert r.starts is not None
    starts_before = r.starts
    r.add_rec(985, 986, 1, "late", 7, 0)  # starts before the last record (990)
    r.add_rec(1000, 1001, 1, "next", 7, 0)
    assert not r.ordered
    assert r.index_before(987) == 99  # 0..980, then the late 985
    assert r.starts is starts_before  # kept and patched, not rebuilt
    assert [x[3] for x in r[-3:]] == ["late", 99, "next"]
    assert list(r.starts) == [x[0] for x in r]
