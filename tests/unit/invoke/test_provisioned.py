"""The provisioner's reconciliation, over fake pools (no sandboxes)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from lambdaplane.invoke.environment import EnvState, Outcome
from lambdaplane.invoke.pools import EnvironmentPools
from lambdaplane.invoke.provisioned import FAILED, IN_PROGRESS, READY, Provisioner, Target
from lambdaplane.store.functions import StoredFunction


@dataclass
class FakeEnv:
    version: str
    state: EnvState = EnvState.READY
    dead: bool = False


@dataclass
class FakePools:
    """Provisioned environments per (function, version); ``provision`` starts them READY,
    or fails them all when ``fail`` is set."""

    envs: list[tuple[str, FakeEnv]] = field(default_factory=list)
    fail: bool = False

    async def provision(self, image: Any, count: int) -> list[Outcome | None]:
        name, version = image
        if self.fail:
            return [Outcome(b"init failed", "Unhandled") for _ in range(count)]
        self.envs.extend((name, FakeEnv(version)) for _ in range(count))
        return [None] * count

    def provisioned(self, function_name: str, version: str) -> list[FakeEnv]:
        return [
            e for n, e in self.envs if n == function_name and e.version == version and not e.dead
        ]

    async def unprovision(self, function_name: str, version: str, keep: int = 0) -> None:
        mine = [(n, e) for n, e in self.envs if n == function_name and e.version == version]
        alive = [(n, e) for n, e in mine if not e.dead]
        for pair in [p for p in mine if p[1].dead] + alive[keep:]:
            self.envs.remove(pair)


def stored(version: str) -> StoredFunction:
    return StoredFunction("fn", version, "rev", "Active", None, "sha", 1, {})


class World:
    def __init__(self) -> None:
        self.pools = FakePools()
        self.targets: list[Target] = []
        self.provisioner = Provisioner(
            cast(EnvironmentPools, self.pools),
            lambda: list(self.targets),
            lambda s: cast(Any, (s.name, s.version)),
        )

    def want(self, qualifier: str, version: str | None, count: int, modified: float = 1.0) -> None:
        self.targets = [t for t in self.targets if t.qualifier != qualifier] + [
            Target("fn", qualifier, count, modified, stored(version) if version else None)
        ]

    async def settle(self) -> None:
        """Two passes: one starts environments, the next sees them READY."""
        for _ in range(2):
            await self.provisioner.reconcile()
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    def status(self, qualifier: str, count: int) -> tuple[int, str, str | None]:
        allocation = self.provisioner.allocation("fn", qualifier, count)
        return allocation.allocated, allocation.status, allocation.reason


def test_a_config_becomes_ready_with_its_environments() -> None:
    async def scenario() -> None:
        world = World()
        world.want("1", "1", 3)
        assert world.status("1", 3) == (0, IN_PROGRESS, None)
        await world.settle()
        assert world.status("1", 3) == (3, READY, None)
        world.want("1", "1", 1, modified=2.0)  # put again, smaller
        world.provisioner.changed("fn", "1")
        assert world.status("1", 1)[1] == IN_PROGRESS
        await world.settle()
        assert world.status("1", 1) == (1, READY, None)
        assert len(world.pools.provisioned("fn", "1")) == 1

    asyncio.run(scenario())


def test_an_init_failure_fails_the_config_until_it_is_put_again() -> None:
    async def scenario() -> None:
        world = World()
        world.pools.fail = True
        world.want("1", "1", 2)
        await world.settle()
        assert world.status("1", 2) == (0, FAILED, "FUNCTION_ERROR_INIT_FAILURE")
        world.pools.fail = False
        await world.settle()
        assert world.status("1", 2)[1] == FAILED  # no retry by itself
        world.want("1", "1", 2, modified=2.0)
        await world.settle()
        assert world.status("1", 2) == (2, READY, None)

    asyncio.run(scenario())


def test_a_dead_environment_is_replaced() -> None:
    async def scenario() -> None:
        world = World()
        world.want("1", "1", 2)
        await world.settle()
        world.pools.envs[0][1].dead = True
        assert world.status("1", 2)[0] == 1  # allocated drops meanwhile
        await world.settle()
        assert world.status("1", 2) == (2, READY, None)
        assert len(world.pools.envs) == 2

    asyncio.run(scenario())


def test_an_alias_keeps_its_old_version_until_the_new_one_is_ready() -> None:
    async def scenario() -> None:
        world = World()
        world.want("live", "1", 1)
        await world.settle()
        world.want("live", "2", 1)
        await world.provisioner.reconcile()  # starts version 2's environment
        assert world.pools.provisioned("fn", "1")
        await world.settle()
        assert world.status("live", 1) == (1, READY, None)
        assert not world.pools.provisioned("fn", "1")
        assert len(world.pools.provisioned("fn", "2")) == 1

    asyncio.run(scenario())


def test_a_deleted_config_gives_up_its_environments() -> None:
    async def scenario() -> None:
        world = World()
        world.want("1", "1", 2)
        world.want("live", "2", 1)
        await world.settle()
        world.targets = [t for t in world.targets if t.qualifier != "1"]
        await world.settle()
        assert not world.pools.provisioned("fn", "1")
        assert len(world.pools.provisioned("fn", "2")) == 1

    asyncio.run(scenario())
