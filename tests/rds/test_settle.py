"""CreateDBCluster / CreateDBInstance answer once the resource is ready, within a bound: the answer
says "creating" (as AWS's does), and a Describe right after it (a waiter's first poll) finds it
available. A provisioning slower than the bound is answered at the bound, the loop serving meanwhile."""

from __future__ import annotations

import asyncio
import time

from .conftest import Env


async def test_create_answers_creating_and_the_next_describe_finds_it_available(env: Env) -> None:
    env.service.settle_seconds = 10.0
    created = await env.cluster(drain=False)
    assert created["Status"] == "creating"
    assert (await env.describe_cluster())["Status"] == "available"
    instance = await env.instance(drain=False)
    assert instance["DBInstanceStatus"] == "creating" and "Endpoint" not in instance
    described = await env.describe_instance()
    assert described["DBInstanceStatus"] == "available" and described["Endpoint"]["Port"] > 0


async def test_a_failing_create_answers_without_waiting_for_the_bound(env: Env) -> None:
    env.service.settle_seconds = 10.0
    env.runtime.fail["create_cluster"] = "no binaries"
    started = time.monotonic()
    assert (await env.cluster(drain=False))["Status"] == "creating"
    assert time.monotonic() - started < 5
    assert (await env.describe_cluster())["Status"] == "failed"


async def test_a_slow_provisioning_is_answered_at_the_bound_and_the_loop_keeps_serving(env: Env) -> None:
    await env.cluster()
    env.service.settle_seconds = 0.5
    gate = env.runtime.gates["open_endpoint"] = asyncio.Event()

    async def describe_meanwhile() -> str:
        await asyncio.sleep(0.1)
        return str((await env.describe_instance())["DBInstanceStatus"])

    started = time.monotonic()
    instance, meanwhile = await asyncio.gather(env.instance(drain=False), describe_meanwhile())
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3, elapsed
    assert instance["DBInstanceStatus"] == "creating" and meanwhile == "creating"
    assert (await env.describe_instance())["DBInstanceStatus"] == "creating"  # still provisioning: not cancelled
    gate.set()
    await env.service.drain()
    assert (await env.describe_instance())["DBInstanceStatus"] == "available"


async def test_a_slow_cluster_create_is_answered_at_the_bound(env: Env) -> None:
    env.service.settle_seconds = 0.3
    gate = env.runtime.gates["create_cluster"] = asyncio.Event()
    started = time.monotonic()
    assert (await env.cluster(drain=False))["Status"] == "creating"
    # the instance waits behind the cluster's creation (one task at a time per cluster), also bounded
    assert (await env.instance(drain=False))["DBInstanceStatus"] == "creating"
    assert 0.6 <= time.monotonic() - started < 4
    assert (await env.describe_cluster())["Status"] == "creating"
    gate.set()
    await env.service.drain()
    assert (await env.describe_cluster())["Status"] == "available"
    assert (await env.describe_instance())["DBInstanceStatus"] == "available"


async def test_an_instance_can_join_a_cluster_whose_parameters_postgresql_refused(env: Env) -> None:
    """Now that CreateDBCluster answers after the cluster is settled, the instance arrives after the
    cluster is incompatible-parameters: it is created in that state, so a reboot can recover both."""
    env.runtime.incompatible["create_cluster"] = "max_connections too high"
    await env.cluster()
    assert (await env.describe_cluster())["Status"] == "incompatible-parameters"
    assert (await env.instance())["DBInstanceStatus"] == "creating"
    assert (await env.describe_instance())["DBInstanceStatus"] == "incompatible-parameters"
