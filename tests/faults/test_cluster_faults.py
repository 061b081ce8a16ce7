"""Faults on the three-node Apache Kafka cluster (issue 27), under the same load, checks and table as test_faults.py:
`make run BROKER=kafka KAFKA_NODES=3 REPLICAS=2` (every node broker and controller, replication 3,
min.insync.replicas 2; two processes of every service), supervised, on ports and a folder of its own.

The cases, in this order, each starting from a whole cluster (every node serving, every partition's replicas in
sync, every service process ready): SIGKILL of the node that leads the most partitions; SIGKILL of the active
controller; a rolling restart, one node at a time (SIGTERM: a controlled shutdown; the next once the restarted node
is back in every ISR); one node's data folder deleted while it is down, then started (it is formatted again and
refills from the others); SIGKILL of one replica of every service, the one that relays (its partitions and the relay
move to the other); last, all three nodes down for 30 s.

The supervisor (devstack.run) restarts what dies. For the two cases that need a node to stay down, the supervisor
is held (SIGSTOP) meanwhile, as an operator would stop it before working on a node. A case's `flow back` is
measured from the fault's end (a kill: at once; a restart or an outage: once every node serves again); the target is
0 lost, 0 doubled and the flow back within FLOW_TARGET.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from devstack import kafka, procs
from devstack.kafka import KafkaCluster, KafkaNode
from tests.faults.checks import assert_whole, exercise, supervisor_said
from tests.faults.conftest import Union, running
from tests.faults.report import Outcome
from tests.faults.stack import SERVICES, SupervisedStack

NODES = 3

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(kafka.java() is None, reason="Apache Kafka needs Java 17: there is no `java`"),
    # about 4 minutes of a stack of its own: `make test-kafka` runs it (the three-node session), `make test` does not
    # (its broker is one node, or Tansu)
    pytest.mark.skipif(
        os.environ.get("TEST_BROKER") != "kafka" or os.environ.get("TEST_KAFKA_NODES") != str(NODES),
        reason="the cluster's faults: make test-kafka (TEST_BROKER=kafka TEST_KAFKA_NODES=3)",
    ),
]

REPLICAS = 2
FLOW_TARGET = 15.0  # s from the fault's end until a join made after it is everywhere
OUTAGE = 30.0  # s all three nodes stay down
WHOLE_TIMEOUT = 120.0  # s for the cluster to be whole again before a case


@pytest.fixture(scope="module")
def supervised_stack(request: pytest.FixtureRequest) -> Iterator[SupervisedStack]:
    folder = procs.run_dir() / "test" / f"cluster-faults-{os.getpid()}"
    stack = SupervisedStack(folder, broker="kafka", kafka_nodes=NODES, replicas=REPLICAS)
    with running(request, stack):
        yield stack


@pytest.fixture(scope="module")
def cluster(supervised_stack: SupervisedStack) -> KafkaCluster:
    return supervised_stack.cluster()


def out_of_sync(cluster: KafkaCluster) -> list[str]:
    """Partitions (every topic, the internal ones included) not led, or whose replicas are not all in sync."""
    metadata = cluster._admin().list_topics(timeout=5)
    return [
        f"{name}[{number}]"
        for name, topic in metadata.topics.items()
        for number, partition in topic.partitions.items()
        if partition.leader < 0 or set(partition.isrs) != set(partition.replicas)
    ]


def wait_whole(stack: SupervisedStack, cluster: KafkaCluster, timeout: float = WHOLE_TIMEOUT) -> float:
    """Until every node serves and every partition is in sync; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    problem = "not asked yet"
    while time.monotonic() < deadline:
        pids = stack.pids()
        missing = [name for name in stack.kafka_names if name not in pids]
        try:
            live = cluster.live_brokers(timeout=2)
            behind = out_of_sync(cluster)
        except Exception as exc:
            problem = repr(exc)
        else:
            down = {node.node_id for node in cluster.members} - live
            if not missing and not down and not behind:
                return time.monotonic() - started
            problem = f"not running {missing}, not serving {sorted(down)}, out of sync {behind[:5]}"
        time.sleep(0.5)
    raise TimeoutError(f"the cluster is not whole after {timeout}s: {problem}")


async def ready(stack: SupervisedStack, cluster: KafkaCluster) -> None:
    """The cluster whole and every service process ready: where each case starts from."""
    await asyncio.to_thread(wait_whole, stack, cluster)
    deadline = time.monotonic() + WHOLE_TIMEOUT
    async with httpx.AsyncClient() as client:
        while not await stack.all_ready(client):
            assert time.monotonic() < deadline, "the services are not ready again"
            await asyncio.sleep(0.5)


def assert_on_target(outcome: Outcome) -> None:
    assert_whole(outcome)
    assert outcome.flow_back is not None
    assert outcome.flow_back <= FLOW_TARGET, f"the flow came back {outcome.flow_back:.1f} s after the fault's end"


def serves(cluster: KafkaCluster, node: KafkaNode) -> bool:
    """Does the node answer, naming itself a live broker (registered, unfenced)? `KafkaCluster.serves` asks only of
    nodes it started; here the supervisor runs them."""
    try:
        return node.node_id in cluster.live_brokers(1, asking=node)
    except Exception:
        return False


async def wait_restarted(stack: SupervisedStack, name: str, old_pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while stack.pids().get(name) in {None, old_pid}:
        assert time.monotonic() < deadline, f"{name} was not restarted"
        await asyncio.sleep(0.2)


async def test_the_leader_of_most_partitions_killed(
    supervised_stack: SupervisedStack, cluster: KafkaCluster, union: Union
) -> None:
    await ready(supervised_stack, cluster)
    offset = supervised_stack.mark()
    led = await asyncio.to_thread(cluster.partition_leaders)
    node = max(led, key=lambda n: led[n])

    async def kill() -> str:
        supervised_stack.kill(f"kafka-{node}")
        return f"kafka-{node} led {led[node]} of {sum(led.values())} partitions ({led})"

    outcome = await exercise(supervised_stack, union, f"SIGKILL kafka-{node}, the leader of most partitions", kill)
    supervisor_said(supervised_stack, offset, f"kafka-{node}")
    assert_on_target(outcome)


async def test_the_active_controller_killed(
    supervised_stack: SupervisedStack, cluster: KafkaCluster, union: Union
) -> None:
    await ready(supervised_stack, cluster)
    offset = supervised_stack.mark()
    controller = await asyncio.to_thread(cluster.active_controller)
    killed_at: list[float] = []

    async def elected() -> tuple[int, float]:
        """The quorum's new leader, and the seconds from the kill until a node named it."""
        while True:
            with contextlib.suppress(Exception):
                leader = await asyncio.to_thread(cluster.active_controller, 2)
                if leader != controller:
                    return leader, time.monotonic() - killed_at[0]
            await asyncio.sleep(0.2)

    async def kill() -> str:
        supervised_stack.kill(f"kafka-{controller}")
        killed_at.append(time.monotonic())
        return f"kafka-{controller} was the active controller"

    election = asyncio.create_task(elected())
    try:
        outcome = await exercise(supervised_stack, union, f"SIGKILL kafka-{controller}, the active controller", kill)
        leader, took = await asyncio.wait_for(election, 60)
    finally:
        election.cancel()
    outcome.notes.append(f"kafka-{leader} the active controller {took:.1f} s after the kill (DescribeQuorum)")
    supervisor_said(supervised_stack, offset, f"kafka-{controller}")
    assert leader != controller
    assert_on_target(outcome)


async def test_a_rolling_restart(supervised_stack: SupervisedStack, cluster: KafkaCluster, union: Union) -> None:
    """As an operator restarts a cluster: one node stopped (SIGTERM, a controlled shutdown), started again (here by
    the supervisor), and the next only once every partition is in sync again."""
    await ready(supervised_stack, cluster)
    offset = supervised_stack.mark()

    async def roll() -> str:
        took = []
        for name in supervised_stack.kafka_names:
            started = time.monotonic()
            pid = supervised_stack.kill(name, signal.SIGTERM)
            await wait_restarted(supervised_stack, name, pid)
            await asyncio.to_thread(wait_whole, supervised_stack, cluster)
            took.append(f"{name} {time.monotonic() - started:.1f} s")
        return "each node stopped, started and back in every ISR: " + ", ".join(took)

    outcome = await exercise(supervised_stack, union, "rolling restart of kafka-1..3", roll)
    for name in supervised_stack.kafka_names:
        supervisor_said(supervised_stack, offset, name)
    assert_on_target(outcome)


async def test_a_node_data_deleted_while_down(
    supervised_stack: SupervisedStack, cluster: KafkaCluster, union: Union
) -> None:
    """The node is killed and its data folder deleted while the supervisor is held; then the supervisor formats it
    again (same cluster id and credentials) and starts it: it must refill every partition from the others."""
    await ready(supervised_stack, cluster)
    controller = await asyncio.to_thread(cluster.active_controller)
    node = next(n for n in cluster.members if n.node_id != controller)  # the controller's loss is the case above
    name = f"kafka-{node.node_id}"
    offset = supervised_stack.mark()
    refilled: list[float] = []

    async def wipe() -> str:
        with supervised_stack.unsupervised():
            pid = supervised_stack.kill(name)
            down = time.monotonic()
            while node.node_id in await asyncio.to_thread(cluster.live_brokers, 2):  # fenced: it left the ISRs
                assert time.monotonic() - down < 60, f"{name} was not fenced"
                await asyncio.sleep(0.2)
            while node.data_dir.exists():
                await asyncio.sleep(0.1)  # a moment for the killed JVM's files to be closed
                shutil.rmtree(node.data_dir, ignore_errors=True)
        started = time.monotonic()
        await wait_restarted(supervised_stack, name, pid)
        await asyncio.to_thread(wait_whole, supervised_stack, cluster)
        refilled.append(time.monotonic() - started)
        return f"{name}'s data deleted while down: formatted, started and back in every ISR in {refilled[0]:.1f} s"

    outcome = await exercise(supervised_stack, union, f"{name}'s data deleted while down, started", wipe)
    supervisor_said(supervised_stack, offset, name)
    assert "formatted again" in supervised_stack.output(offset)
    assert (node.data_dir / "meta.properties").exists()
    assert refilled
    assert_on_target(outcome)


# Passed in its first run; in the second (2 cores) the transfer service's read model had 65 of 255 joins still
# missing 30 s after the kill (every other read model had them all); whole in the three runs since. Not proven, but
# one way to lose them was found and closed: a transaction PostgreSQL broke off for a conflict (two replicas' batches
# meeting while partitions move) was retried only max_retries times, then dead-lettered (shared/consumer.py now
# retries it until it passes).
async def test_one_replica_of_every_service_killed(
    supervised_stack: SupervisedStack, cluster: KafkaCluster, union: Union
) -> None:
    """For each service, the replica that relays is SIGKILLed (all at once): its partitions and the relay must move
    to the other replica."""
    await ready(supervised_stack, cluster)
    offset = supervised_stack.mark()
    async with httpx.AsyncClient() as client:
        roles = {name: await supervised_stack.readyz(client, name) for name in supervised_stack.instances}
    relaying = {
        service: next((n for n in supervised_stack.replicas_of(service) if roles[n].get("relay") == "active"), None)
        for service in SERVICES
    }
    victims = {service: name or supervised_stack.replicas_of(service)[0] for service, name in relaying.items()}

    async def kill() -> str:
        for name in victims.values():
            supervised_stack.kill(name)
        held = ", ".join(f"{name} ({len(roles[name].get('partitions', []))} partitions)" for name in victims.values())
        return f"SIGKILLed the replicas that relayed: {held}"

    outcome = await exercise(supervised_stack, union, "SIGKILL one replica of every service (the relay's)", kill)
    for name in victims.values():
        supervisor_said(supervised_stack, offset, name)
    async with httpx.AsyncClient() as client:
        after = {name: await supervised_stack.readyz(client, name) for name in supervised_stack.instances}
    for service, victim in victims.items():
        active = [n for n in supervised_stack.replicas_of(service) if after[n].get("relay") == "active"]
        assert len(active) == 1, f"{service}: relays {active}"
        if relaying[service] is not None:
            assert active != [victim], f"{service}: the relay did not move from {victim}"
    assert_on_target(outcome)


# Kafka revealed it (first run, 2 cores): after all three nodes were SIGKILLed and held down, one relay's idempotent
# producer got OutOfOrderSequenceNumber from the restarted brokers (their producer state is rebuilt from snapshots
# that lag what they acknowledged); aiokafka treats it as fatal for the producer (its sender stops, every later send
# fails alike) where Java's producer bumps its epoch. Fixed: the relay replaces such a producer (shared/outbox.py).
async def test_all_nodes_down_for_30s(supervised_stack: SupervisedStack, cluster: KafkaCluster, union: Union) -> None:
    """All three nodes SIGKILLed and held down 30 s, then started. The outage is over once every node serves again
    (registered and unfenced): how long that takes after the start is Kafka's own (the JVMs' start, the quorum's
    election, and broker.session.timeout.ms, which a restarted node waits out before the controller takes its new
    registration), and is in the note; the flow back is measured from there."""
    await ready(supervised_stack, cluster)
    offset = supervised_stack.mark()

    async def outage() -> str:
        with supervised_stack.unsupervised():
            for name in supervised_stack.kafka_names:
                supervised_stack.kill(name)
            await asyncio.sleep(OUTAGE)
        started = time.monotonic()
        serving: dict[int, float] = {}
        while len(serving) < len(cluster.members):
            assert time.monotonic() - started < WHOLE_TIMEOUT, f"only {sorted(serving)} serve again"
            for node in cluster.members:
                if node.node_id not in serving and await asyncio.to_thread(serves, cluster, node):
                    serving[node.node_id] = time.monotonic() - started
            await asyncio.sleep(0.2)
        took = ", ".join(f"kafka-{n} {t:.1f} s" for n, t in sorted(serving.items()))
        return f"all three SIGKILLed and held down {OUTAGE:.0f} s, then started; each serving again after: {took}"

    outcome = await exercise(supervised_stack, union, f"kafka-1..3 down {OUTAGE:.0f} s", outage)
    for name in supervised_stack.kafka_names:
        supervisor_said(supervised_stack, offset, name)
    assert_on_target(outcome)
