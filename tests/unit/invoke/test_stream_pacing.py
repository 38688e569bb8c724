"""A streamed response's pace: uncapped for its first 6 MB, then at most the cap."""

from __future__ import annotations

import asyncio

from lambdaplane.invoke.service import STREAM_UNCAPPED_BYTES, StreamedInvoke

MIB = 1 << 20


def paced(rate: float, chunks: list[int]) -> list[float]:
    """The delays the reader waited before each chunk of these sizes (no real sleeping:
    the loop's clock barely moves, so each delay is the chunk's due time from the cap)."""
    waits: list[float] = []

    async def run() -> None:
        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        stream = StreamedInvoke("1", "req", rate=rate, sleep=sleep)
        for size in chunks:
            stream.chunk(b"x" * size)
        stream._queue.put_nowait(None)  # the end, as the invocation's end puts it
        got = [len(data) async for data in stream.chunks()]
        assert got == chunks

    asyncio.run(run())
    return waits


def test_the_first_six_megabytes_are_not_held_back() -> None:
    assert STREAM_UNCAPPED_BYTES == 6 * MIB
    assert paced(2 * MIB, [MIB] * 6) == []


def test_past_them_the_reader_keeps_to_the_cap() -> None:
    waits = paced(2 * MIB, [MIB] * 10)
    # chunks 7..10 are due 0.5, 1.0, 1.5, 2.0 s after the stream passed 6 MB
    assert len(waits) == 4
    for wait, due in zip(waits, (0.5, 1.0, 1.5, 2.0), strict=True):
        assert due - 0.05 < wait <= due


def test_a_chunk_across_the_line_waits_for_its_part_beyond_it() -> None:
    (wait,) = paced(2 * MIB, [5 * MIB, 2 * MIB])
    assert 0.45 < wait <= 0.5  # 1 MB past the line at 2 MB/s


def test_no_cap_means_no_waiting() -> None:
    assert paced(0, [MIB] * 10) == []
