"""RedisStreamBus against the real Redis: delivery, retries, dead letters, reclaim.

Every test gets its own stream (a uuid) and deletes its keys afterwards. Nothing
asserts on elapsed time: tests wait for conditions with bounded loops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.bus import BusMessage, RedisStreamBus

ROOT = Path(__file__).resolve().parents[2]
GROUP = "waooaw-workers"
WAIT = 15.0  # upper bound for any condition; generous, never an assertion on speed

# Small timings keep the tests quick; none of them is asserted on.
FAST: dict[str, Any] = {"block_ms": 100, "backoff_base": 0.01, "visibility_timeout": 0.3}


@pytest.fixture
def stream(redis_url: str) -> Iterator[str]:
    name = f"test:bus:{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(name, f"{name}:dead", f"{name}:errors")
    finally:
        client.close()


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT) -> None:
    """Poll `condition` until true; fail after `timeout` naming what never happened."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await asyncio.sleep(0.02)


async def pending_count(bus: RedisStreamBus) -> int:
    summary = await bus._redis.xpending(bus.stream, bus.group)
    return int(summary["pending"])


async def nothing_pending(bus: RedisStreamBus) -> bool:
    return await pending_count(bus) == 0


async def never_dead(message: BusMessage, reason: str) -> None:
    raise AssertionError(f"unexpected dead letter for {message}: {reason}")


class Consuming:
    """Run `bus.consume` in the background; stop it and check it returns cleanly."""

    def __init__(self, bus: RedisStreamBus, handler: Any, on_dead: Any = never_dead) -> None:
        self.bus = bus
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(bus.consume(handler, on_dead, self.stop))

    async def finish(self) -> None:
        self.stop.set()
        # consume notices stop within block_ms; the bound only guards against a hang.
        await asyncio.wait_for(self.task, timeout=WAIT)


# ---------------------------------------------------------------------------- tests


def test_published_delivery_is_handled_once_and_acked(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, **FAST)
        seen: list[BusMessage] = []
        handled = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            seen.append(message)
            handled.set()

        await bus.publish("d-1")
        consuming = Consuming(bus, handler)
        await asyncio.wait_for(handled.wait(), WAIT)
        await wait_until(lambda: nothing_pending(bus), "the entry to be acked")
        await consuming.finish()

        assert seen == [BusMessage("d-1", 1)]
        assert await bus.depth() == 0
        assert await bus._redis.xlen(stream) == 0  # handled entries leave the stream
        assert await bus.dead_letters() == []
        await bus.close()

    asyncio.run(scenario())


def test_failure_is_retried_in_process_then_acked(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, in_process_retries=2, **FAST)
        seen: list[BusMessage] = []
        done = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            seen.append(message)
            if len(seen) < 3:
                raise RuntimeError("transient")
            done.set()

        await bus.publish("d-retry")
        consuming = Consuming(bus, handler)
        await asyncio.wait_for(done.wait(), WAIT)
        await wait_until(lambda: nothing_pending(bus), "the entry to be acked")
        await consuming.finish()

        # Two in-process retries inside the first delivery: no redelivery needed.
        assert seen == [BusMessage("d-retry", 1)] * 3
        await bus.close()

    asyncio.run(scenario())


def test_failure_left_pending_is_redelivered_and_then_acked(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, in_process_retries=0, **FAST)
        seen: list[BusMessage] = []
        done = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            seen.append(message)
            if message.attempt == 1:
                raise RuntimeError("first delivery fails")
            done.set()

        await bus.publish("d-again")
        consuming = Consuming(bus, handler)
        await asyncio.wait_for(done.wait(), WAIT)
        await wait_until(lambda: nothing_pending(bus), "the entry to be acked")
        await consuming.finish()

        assert seen == [BusMessage("d-again", 1), BusMessage("d-again", 2)]
        assert await bus._redis.hlen(f"{stream}:errors") == 0  # the remembered error is cleared on ack
        assert await bus.dead_letters() == []
        await bus.close()

    asyncio.run(scenario())


def test_always_failing_delivery_is_dead_lettered_after_max_deliveries(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, max_deliveries=3, in_process_retries=1, **FAST)
        seen: list[BusMessage] = []
        dead: list[tuple[BusMessage, str]] = []
        buried = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            seen.append(message)
            raise ValueError(f"boom {message.attempt}")

        async def on_dead(message: BusMessage, reason: str) -> None:
            dead.append((message, reason))
            buried.set()

        await bus.publish("d-doomed")
        consuming = Consuming(bus, handler, on_dead)
        await asyncio.wait_for(buried.wait(), WAIT)
        await consuming.finish()

        # Three deliveries, each tried twice in-process, then buried at once.
        assert [m.attempt for m in seen] == [1, 1, 2, 2, 3, 3]
        assert len(dead) == 1
        assert dead[0][0] == BusMessage("d-doomed", 3)
        assert "boom 3" in dead[0][1]
        letters = await bus.dead_letters()
        assert len(letters) == 1
        assert letters[0]["delivery"] == "d-doomed"
        assert letters[0]["attempts"] == 3
        assert "boom 3" in letters[0]["error"]
        assert await pending_count(bus) == 0
        assert await bus.depth() == 0
        await bus.close()

    asyncio.run(scenario())


_DOOMED_CONSUMER = textwrap.dedent(
    """
    import asyncio, sys
    from bot.bus import RedisStreamBus

    async def main() -> None:
        bus = RedisStreamBus(sys.argv[1], stream=sys.argv[2], consumer="doomed", block_ms=100)

        async def handler(message):
            await asyncio.Event().wait()  # takes the entry and never finishes

        async def on_dead(message, reason):
            pass

        await bus.consume(handler, on_dead, asyncio.Event())

    asyncio.run(main())
    """
)


async def _held_by_doomed(bus: RedisStreamBus, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"consumer subprocess exited early: {proc.communicate()[1].decode()}")
    held = await bus._redis.xpending_range(bus.stream, GROUP, min="-", max="+", count=10, consumername="doomed")
    return len(held) == 1


async def _kill_a_consumer_holding_the_entry(bus: RedisStreamBus, redis_url: str) -> None:
    """A separate process reads the entry, never finishes it, and is SIGKILLed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_CONSUMER, redis_url, bus.stream],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_until(lambda: _held_by_doomed(bus, proc), "the subprocess to hold the entry pending")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT)
        proc.stderr.close()


def test_entry_of_a_killed_consumer_is_reclaimed_and_handled_once(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, consumer="rescuer", block_ms=100, visibility_timeout=0.5)
        await bus.publish("d-orphan")
        await _kill_a_consumer_holding_the_entry(bus, redis_url)

        seen: list[BusMessage] = []
        handled = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            seen.append(message)
            handled.set()

        consuming = Consuming(bus, handler)
        await asyncio.wait_for(handled.wait(), WAIT)
        await wait_until(lambda: nothing_pending(bus), "the reclaimed entry to be acked")
        await consuming.finish()

        # The dead consumer's delivery counts: this is the second one.
        assert seen == [BusMessage("d-orphan", 2)]
        await bus.close()

    asyncio.run(scenario())


def test_an_entry_reclaimed_behind_a_slow_one_and_taken_by_another_consumer_is_handled_once(
    redis_url: str, stream: str
) -> None:
    """One XAUTOCLAIM hands a consumer several abandoned entries, handled one after the other; the
    one waiting behind a slow handler has no heartbeat, so another consumer reclaims and handles
    it. The first consumer must then leave it alone (bench/load.py saw two comments for one delivery)."""

    async def scenario() -> None:
        timings: dict[str, Any] = {"block_ms": 100, "backoff_base": 0.01, "visibility_timeout": 0.3}
        slow = RedisStreamBus(redis_url, stream=stream, consumer="slow", **timings)
        other = RedisStreamBus(redis_url, stream=stream, consumer="other", **timings)
        for delivery in ("d-slow", "d-behind"):
            await slow.publish(delivery)
        # A consumer that read both and died: both entries are abandoned together.
        await slow._redis.xreadgroup(slow.group, "dead", {stream: ">"}, count=2)
        handled: Counter[str] = Counter()
        slow_started, release = asyncio.Event(), asyncio.Event()

        async def slow_handler(message: BusMessage) -> None:
            if message.delivery_id == "d-slow":
                slow_started.set()
                await release.wait()
            handled[message.delivery_id] += 1

        async def other_handler(message: BusMessage) -> None:
            handled[message.delivery_id] += 1

        first = Consuming(slow, slow_handler)
        await asyncio.wait_for(slow_started.wait(), WAIT)  # it holds d-behind too, not started
        second = Consuming(other, other_handler)
        await wait_until(lambda: _true_when(handled["d-behind"] == 1), "the other consumer to handle d-behind")
        release.set()
        await wait_until(lambda: nothing_pending(slow), "both entries to be acked")
        await first.finish()
        await second.finish()

        assert handled == Counter({"d-slow": 1, "d-behind": 1})
        await slow.close()
        await other.close()

    asyncio.run(scenario())


def test_an_entry_waiting_behind_a_slow_one_is_not_counted_towards_the_dead_letters(
    redis_url: str, stream: str
) -> None:
    """Two entries abandoned together, two deliveries allowed: the consumer that reclaims the first
    and handles it slowly must not claim the second meanwhile, or that claim counts a delivery and
    the other consumer's reclaim a third, burying it without its handler ever running."""

    async def scenario() -> None:
        timings: dict[str, Any] = {**FAST, "max_deliveries": 2}
        slow = RedisStreamBus(redis_url, stream=stream, consumer="slow", **timings)
        other = RedisStreamBus(redis_url, stream=stream, consumer="other", **timings)
        for delivery in ("d-slow", "d-behind"):
            await slow.publish(delivery)
        await slow._redis.xreadgroup(slow.group, "dead", {stream: ">"}, count=2)  # read by a consumer that died
        seen: list[BusMessage] = []
        slow_started, release = asyncio.Event(), asyncio.Event()

        async def slow_handler(message: BusMessage) -> None:
            seen.append(message)
            if message.delivery_id == "d-slow":
                slow_started.set()
                await release.wait()

        async def other_handler(message: BusMessage) -> None:
            seen.append(message)

        first = Consuming(slow, slow_handler)
        await asyncio.wait_for(slow_started.wait(), WAIT)
        second = Consuming(other, other_handler)
        await wait_until(lambda: _true_when(len(seen) == 2), "d-behind to be handled")
        release.set()
        await wait_until(lambda: nothing_pending(slow), "both entries to be acked")
        await first.finish()
        await second.finish()

        assert sorted(seen, key=lambda m: m.delivery_id) == [BusMessage("d-behind", 2), BusMessage("d-slow", 2)]
        assert await slow.dead_letters() == []
        await slow.close()
        await other.close()

    asyncio.run(scenario())


def test_consumer_killed_on_the_last_delivery_sends_the_entry_to_the_dead_letters(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(
            redis_url, stream=stream, consumer="rescuer", block_ms=100, visibility_timeout=0.5, max_deliveries=1
        )
        await bus.publish("d-last")
        await _kill_a_consumer_holding_the_entry(bus, redis_url)

        dead: list[tuple[BusMessage, str]] = []
        buried = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            raise AssertionError(f"ran past max_deliveries: {message}")

        async def on_dead(message: BusMessage, reason: str) -> None:
            dead.append((message, reason))
            buried.set()

        consuming = Consuming(bus, handler, on_dead)
        await asyncio.wait_for(buried.wait(), WAIT)
        await consuming.finish()

        assert dead == [(BusMessage("d-last", 2), "exceeded max deliveries")]
        [letter] = await bus.dead_letters()
        assert (letter["delivery"], letter["attempts"]) == ("d-last", 2)
        assert await pending_count(bus) == 0
        await bus.close()

    asyncio.run(scenario())


def test_entry_without_a_delivery_id_is_dropped(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, **FAST)
        await bus.publish("d-good")  # also creates the group
        await bus._redis.xadd(stream, {"something": "else"})
        seen: list[BusMessage] = []

        async def handler(message: BusMessage) -> None:
            seen.append(message)

        consuming = Consuming(bus, handler)
        await wait_until(lambda: _depth_is(bus, 0), "both entries to leave the stream")
        await consuming.finish()
        assert seen == [BusMessage("d-good", 1)]
        await bus.close()

    asyncio.run(scenario())


def test_two_consumers_never_handle_the_same_entry(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        publisher = RedisStreamBus(redis_url, stream=stream)
        ids = [f"d-{i}" for i in range(50)]
        for delivery_id in ids:
            await publisher.publish(delivery_id)

        handled: list[tuple[str, str]] = []

        def handler_for(name: str) -> Callable[[BusMessage], Awaitable[None]]:
            async def handler(message: BusMessage) -> None:
                handled.append((name, message.delivery_id))
                await asyncio.sleep(0.002)  # let the other consumer take its turn

            return handler

        buses = [RedisStreamBus(redis_url, stream=stream, consumer=name, **FAST) for name in ("a", "b")]
        runs = [Consuming(bus, handler_for(bus.consumer)) for bus in buses]

        async def all_done() -> bool:
            return len(handled) >= len(ids) and await nothing_pending(publisher)

        await wait_until(all_done, "all 50 entries handled and acked")
        for run in runs:
            await run.finish()

        counts = Counter(delivery_id for _, delivery_id in handled)
        assert sorted(counts) == sorted(ids)
        assert set(counts.values()) == {1}, {d: n for d, n in counts.items() if n != 1}
        assert await publisher.depth() == 0
        for bus in [publisher, *buses]:
            await bus.close()

    asyncio.run(scenario())


def test_concurrency_runs_several_consumers_in_one_process(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, consumer="multi", concurrency=3, **FAST)
        ids = [f"d-{i}" for i in range(12)]
        for delivery_id in ids:
            await bus.publish(delivery_id)

        handled: list[str] = []
        running = 0
        most_at_once = 0
        all_started = asyncio.Event()
        release = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            nonlocal running, most_at_once
            running += 1
            most_at_once = max(most_at_once, running)
            if most_at_once == 3:
                all_started.set()
            await release.wait()
            running -= 1
            handled.append(message.delivery_id)

        consuming = Consuming(bus, handler)
        await asyncio.wait_for(all_started.wait(), WAIT)  # three handlers in flight at once
        release.set()

        async def all_done() -> bool:
            return len(handled) >= len(ids) and await nothing_pending(bus)

        await wait_until(all_done, "all entries handled by the three consumers")
        await consuming.finish()

        assert sorted(handled) == sorted(ids)
        # A clean stop retires consumer names that hold nothing.
        assert await bus._redis.xinfo_consumers(stream, GROUP) == []
        await bus.close()

    asyncio.run(scenario())


def test_slow_handler_keeps_its_entry_from_other_consumers(redis_url: str, stream: str) -> None:
    """A handler running longer than the visibility timeout is not handed to another worker."""

    async def scenario() -> None:
        handled: list[tuple[str, int]] = []
        finished = asyncio.Event()

        def handler_for(name: str) -> Callable[[BusMessage], Awaitable[None]]:
            async def handler(message: BusMessage) -> None:
                handled.append((name, message.attempt))
                await asyncio.sleep(1.5)  # five visibility timeouts of work
                finished.set()

            return handler

        slow = RedisStreamBus(redis_url, stream=stream, consumer="slow", **FAST)
        await slow.publish("d-slow")
        first = Consuming(slow, handler_for("slow"))
        await wait_until(lambda: _true_when(bool(handled)), "the slow consumer to start")
        other = RedisStreamBus(redis_url, stream=stream, consumer="other", **FAST)
        second = Consuming(other, handler_for("other"))
        await asyncio.wait_for(finished.wait(), WAIT)
        await wait_until(lambda: nothing_pending(slow), "the entry to be acked")
        await first.finish()
        await second.finish()

        assert handled == [("slow", 1)]
        for bus in (slow, other):
            await bus.close()

    asyncio.run(scenario())


def test_depth_counts_waiting_and_in_flight_entries(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, **FAST)
        assert await bus.depth() == 0  # nothing published: no stream, no group

        for i in range(3):
            await bus.publish(f"d-{i}")
        assert await bus.depth() == 3

        started = asyncio.Event()
        release = asyncio.Event()

        async def handler(message: BusMessage) -> None:
            started.set()
            await release.wait()

        consuming = Consuming(bus, handler)
        await asyncio.wait_for(started.wait(), WAIT)
        assert await bus.depth() == 3  # one in flight, two waiting
        release.set()
        await wait_until(lambda: _depth_is(bus, 0), "depth to reach 0")
        await consuming.finish()
        await bus.close()

    asyncio.run(scenario())


async def _true_when(value: bool) -> bool:
    return value


async def _depth_is(bus: RedisStreamBus, expected: int) -> bool:
    return await bus.depth() == expected


def test_stop_ends_consume_cleanly_with_nothing_to_read(redis_url: str, stream: str) -> None:
    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream, block_ms=200)

        async def handler(message: BusMessage) -> None:
            raise AssertionError("nothing was published")

        consuming = Consuming(bus, handler)
        await wait_until(lambda: _group_exists(bus), "the group to be created lazily")
        await consuming.finish()  # returns (no exception) once the blocking read times out
        assert consuming.task.result() is None
        await bus.close()

    asyncio.run(scenario())


def test_an_idle_read_on_the_default_block_ends_empty_rather_than_in_a_timeout(redis_url: str, stream: str) -> None:
    """`waooaw worker` blocks 5 s a read, redis-py 8's default socket timeout too: the read must outlast its block.

    Before, every idle read raised a timeout and the consumer backed off (up to 5 s) before reading
    again, however soon the next delivery came. This test waits out one whole block.
    """

    async def scenario() -> None:
        bus = RedisStreamBus(redis_url, stream=stream)  # the default block
        await bus._ensure_group()
        assert await bus._read_new("idle") == []
        await bus.close()

    asyncio.run(scenario())


async def _group_exists(bus: RedisStreamBus) -> bool:
    try:
        groups = await bus._redis.xinfo_groups(bus.stream)
    except redis.ResponseError:
        return False
    return any(g["name"] == bus.group for g in groups)


def test_ping(redis_url: str) -> None:
    async def scenario() -> None:
        live = RedisStreamBus(redis_url)
        unreachable = RedisStreamBus("redis://127.0.0.1:1")
        assert await live.ping() is True
        assert await unreachable.ping() is False
        await live.close()
        await unreachable.close()

    asyncio.run(scenario())
