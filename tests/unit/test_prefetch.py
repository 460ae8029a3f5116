from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sluice.prefetch import prefetch


def test_items_arrive_in_order() -> None:
    # Given 100 items read ahead 3 at a time
    # When they are all consumed
    # Then they arrive in the order they were produced
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_the_producers_error_is_raised_to_the_consumer_after_the_items_before_it() -> None:
    # Given a producer that yields two items and then fails
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("corrupt block")

    got = []
    # When the consumer reads through the prefetch
    # Then it is given the producer's own error
    with pytest.raises(ValueError, match="corrupt block"):
        for item in prefetch(items()):
            got.append(item)
    # And only after the two items before it
    assert got == [1, 2]


def test_closing_early_stops_the_producer() -> None:
    # Given a producer of 1000 items that says when it has finished
    produced = []
    finished = threading.Event()

    def items() -> Iterator[int]:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            finished.set()

    # When the consumer takes the first item and closes the stream
    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    # Then the producer is stopped, having read ahead no more than the buffer holds
    assert finished.wait(5)
    assert len(produced) <= 5  # at most the buffer's worth was read ahead
