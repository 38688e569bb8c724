"""The live execution environments of this node, grouped in pools per function version.

``EnvironmentPools`` applies the scheduler's decisions: it hands out a warm
environment, or starts a cold one (at most ``max_parallel_starts`` sandbox creations
at once, so a burst on 2 cores does not stampede), or throttles. A reaper task owned
by the server's lifespan destroys idle environments after the keep-alive and those of
superseded versions; ``shutdown`` destroys everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from lambdaplane.errors import TooManyRequestsException
from lambdaplane.invoke import prewarm, scheduler
from lambdaplane.invoke.environment import AgentLaunch, Environment, EnvState, Outcome
from lambdaplane.invoke.image import FunctionImage
from lambdaplane.invoke.logsink import LogSink
from lambdaplane.invoke.prewarm import Prewarmer
from lambdaplane.metrics import EnvironmentCensus
from lambdaplane.sandbox import CpuPolicy, Sandbox

log = logging.getLogger("lambdaplane.pools")

REAP_INTERVAL_SECONDS = 1.0


def throttled(reason: str) -> TooManyRequestsException:
    return TooManyRequestsException("Rate Exceeded.", Reason=reason)


class EnvironmentPools:
    def __init__(
        self,
        *,
        sandbox: Sandbox,
        agent: AgentLaunch,
        sink: LogSink,
        region: str,
        limits: scheduler.Limits,
        keep_alive: float,
        init_timeout: float,
        cpu: CpuPolicy,
        max_parallel_starts: int,
        prewarmer: Prewarmer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sandbox = sandbox
        self._agent = agent
        self._sink = sink
        self._region = region
        self._limits = limits
        self._keep_alive = keep_alive
        self._init_timeout = init_timeout
        self._cpu = cpu
        self._clock = clock
        self._starts = asyncio.Semaphore(max_parallel_starts)
        self._envs: dict[str, Environment] = {}
        self._current: dict[str, str] = {}  # function name:version -> its current pool key
        self._reaper: asyncio.Task[None] | None = None
        self._prewarmer = prewarmer

    def _views(self) -> list[scheduler.EnvView]:
        return [
            scheduler.EnvView(e.id, e.image.pool_key, e.image.memory_mb, e.busy, e.last_used)
            for e in self._envs.values()
        ]

    async def acquire(self, image: FunctionImage) -> tuple[Environment, Outcome | None]:
        """An environment for one invocation, marked busy; with the init failure if it had one.

        Raises TooManyRequestsException when neither a warm nor a new environment fits.
        """
        self._current[f"{image.function_name}:{image.version}"] = image.pool_key
        await self._discard_dead()
        decision = scheduler.place(image.pool_key, image.memory_mb, self._views(), self._limits)
        if isinstance(decision, scheduler.UseIdle):
            env = self._envs[decision.env_id]
            return env, None
        if isinstance(decision, scheduler.Throttle):
            raise throttled(decision.reason)
        for env_id in decision.evict:
            evicted = self._envs.pop(env_id, None)
            if evicted is not None:
                await evicted.destroy()
        key = prewarm.key_for(image) if self._prewarmer is not None else None
        claimed = self._prewarmer.take(key) if self._prewarmer is not None and key else None
        env = Environment(
            image,
            sandbox=self._sandbox,
            agent=self._agent,
            region=self._region,
            sink=self._sink,
            cpu=self._cpu,
            clock=self._clock,
            env_id=claimed.env_id if claimed is not None else None,
        )
        self._envs[env.id] = env  # Counted (busy, STARTING) before the first await.
        try:
            if claimed is not None and self._prewarmer is not None:
                failure = await env.adopt(claimed, self._prewarmer.mounts, self._init_timeout)
            else:
                async with self._starts:
                    failure = await env.start(self._init_timeout)
            if self._prewarmer is not None and key is not None:
                self._prewarmer.want(key, image.runtime)  # Ready for the next cold start.
        except BaseException:
            self._envs.pop(env.id, None)
            await env.destroy()
            raise
        if failure is not None:
            self._envs.pop(env.id, None)
            await env.destroy()
            return env, failure
        return env, None

    async def _discard_dead(self) -> None:
        """Destroy idle environments whose runtime exited since their last invocation."""
        dead = [e for e in self._envs.values() if e.dead and not e.busy]
        for env in dead:
            self._envs.pop(env.id, None)
            await env.destroy()

    async def release(self, env: Environment) -> None:
        """Return an environment after an invocation: idle again, or destroyed if broken."""
        env.last_used = self._clock()
        if env.state is EnvState.READY and not env.dead:
            stale = (
                self._current.get(f"{env.image.function_name}:{env.image.version}")
                != env.image.pool_key
            )
            if not stale:
                return
        self._envs.pop(env.id, None)
        await env.destroy()

    def forget(self, function_name: str) -> None:
        """A function was deleted: its idle environments go at the next reap."""
        for key in [k for k in self._current if k.split(":", 1)[0] == function_name]:
            del self._current[key]

    async def reap_once(self) -> None:
        if self._prewarmer is not None:
            await self._prewarmer.trim()
        live = frozenset(self._current.values())
        for env_id in scheduler.reap(self._views(), self._clock(), self._keep_alive, live):
            env = self._envs.pop(env_id, None)
            if env is not None:
                await env.destroy()

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="lambdaplane-reaper")

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_SECONDS)
            try:
                await self.reap_once()
            except Exception:
                log.exception("reaping environments failed")

    async def shutdown(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
        envs = list(self._envs.values())
        self._envs.clear()
        await asyncio.gather(*(e.destroy() for e in envs), return_exceptions=True)
        if self._prewarmer is not None:
            await self._prewarmer.shutdown()

    @property
    def live(self) -> list[Environment]:
        return list(self._envs.values())

    def census(self) -> EnvironmentCensus:
        """What runs now, for the metrics (call on the event loop that owns the pools)."""
        states = {"initializing": 0, "busy": 0, "idle": 0}
        busy: dict[tuple[str, str], int] = {}
        for env in self._envs.values():
            state = _CENSUS_STATES.get(env.state)
            if state is None:
                continue  # being destroyed
            states[state] += 1
            if state != "idle":
                key = (env.image.function_name, env.image.version)
                busy[key] = busy.get(key, 0) + 1
        prewarmed = self._prewarmer.waiting if self._prewarmer is not None else 0
        return EnvironmentCensus(
            {**states, "prewarmed": prewarmed}, busy, self._limits.account_concurrency
        )


_CENSUS_STATES = {
    EnvState.STARTING: "initializing",
    EnvState.INITIALIZING: "initializing",
    EnvState.INVOKING: "busy",
    EnvState.READY: "idle",
}
