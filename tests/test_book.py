"""The pool's bookkeeping, without Ray: assignment, batching, retries, never a lost request."""

import pytest

from simworkers.book import PoolBook


def _book(actors=2, **kw):
    book = PoolBook(**kw)
    for i in range(actors):
        book.add_actor(f"a{i}")
    return book


def test_requests_are_spread_over_actors_and_limited_per_actor():
    book = _book(calls_per_actor=2)
    reqs = [book.submit(i) for i in range(10)]
    dispatches = book.assign()
    assert len(dispatches) == 4  # 2 actors x 2 calls
    assert {d.actor for d in dispatches} == {"a0", "a1"}
    assert all(len(d.requests) == 1 for d in dispatches)  # duration unknown: one per call
    assert book.queue_length == 6
    assert sorted(r.id for d in dispatches for r in d.requests) == [r.id for r in reqs[:4]]
    assert book.assign() == []  # no free slot


def test_batch_size_follows_observed_duration():
    book = _book(call_s=0.05, max_batch=8)
    book.observe("fast", 0.002)
    book.observe("slow", 0.5)
    assert book.batch_size("fast") == 8  # capped
    assert book.batch_size("slow") == 1
    for i in range(40):
        book.submit(i, "fast")
    sizes = [len(d.requests) for d in book.assign()]
    assert sizes == [8, 8, 8, 8]


def test_batches_split_a_short_queue_evenly():
    book = _book(call_s=1.0, max_batch=32)
    book.observe("t", 0.001)
    for i in range(6):
        book.submit(i, "t")
    sizes = sorted(len(d.requests) for d in book.assign())
    assert sum(sizes) == 6 and max(sizes) <= 3


def test_completion_frees_the_slot():
    book = _book(actors=1, calls_per_actor=1)
    book.submit("x")
    book.submit("y")
    (d,) = book.assign()
    assert book.assign() == []
    done = book.complete(d.actor, d.call)
    assert [r.payload for r in done] == ["x"]
    (d2,) = book.assign()
    assert d2.requests[0].payload == "y"
    assert book.inflight == 1


def test_dead_actor_requests_go_back_first_and_the_actor_gets_nothing_more():
    book = _book(calls_per_actor=1)
    for i in range(4):
        book.submit(i)
    d0, d1 = book.assign()
    requeued, given_up = book.actor_failed(d0.actor)
    assert [r.payload for r in requeued] == [d0.requests[0].payload]
    assert given_up == []
    assert book.pending[0] == d0.requests[0].id  # retried before newer work
    (d2,) = book.assign() or [None]
    assert d2 is None  # the only live actor is still busy
    book.complete(d1.actor, d1.call)
    (d3,) = book.assign()
    assert d3.actor == d1.actor and d3.requests[0].payload == d0.requests[0].payload
    assert book.actor_deaths == 1 and book.retried == 1


def test_a_request_that_keeps_killing_actors_is_given_up_not_lost():
    book = _book(actors=1, max_attempts=2)
    req = book.submit("poison")
    for attempt in range(2):
        (d,) = book.assign()
        _, given_up = book.actor_failed(d.actor)
        book.add_actor(f"replacement{attempt}")
    assert [r.id for r in given_up] == [req.id]
    assert req.id not in book.requests and book.queue_length == 0


def test_shrinking_retires_only_idle_actors():
    book = _book(actors=2, calls_per_actor=1)
    book.submit(1)
    (d,) = book.assign()
    retired = book.remove_idle_actor()
    assert retired is not None and retired != d.actor
    assert book.remove_idle_actor() is None


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        PoolBook(calls_per_actor=0)
    book = _book(actors=1)
    with pytest.raises(ValueError):
        book.add_actor("a0")


def test_an_urgent_request_goes_before_the_queue():
    book = _book(actors=1, calls_per_actor=1)
    waiting = [book.submit(i) for i in range(3)]
    urgent = book.submit("backbone", urgent=True)
    assert [r.id for d in book.assign() for r in d.requests] == [urgent.id]
    assert book.queue_length == 3 and urgent.id not in [r.id for r in waiting]
