"""Several LiveKit nodes on one Redis, each with its own token service and bot worker.

What a deployment that outgrew one machine looks like, on test hosts in the namespace:
node ``i`` is a machine at ``hosts[i]`` running livekit-server, the token service and the
worker, all nodes share Redis (LiveKit's node registry, room->node map and bus) and one
database (MariaDB in the tests). Each node's webhooks go to its own service, as a load
balancer in front of several services would spread them. ``kill_node`` takes a whole
machine's livekit-server away, for the failover tests.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.process import HarnessError
from talkplatform_agents.harness.redis import RedisServer
from talkplatform_agents.harness.stack import Stack, StackOptions

__all__ = ["Cluster", "ClusterOptions"]

logger = logging.getLogger(__name__)

# livekit-server logs its node id once at start, in its "starting LiveKit server" line.
_NODE_ID = re.compile(r'starting LiveKit server\s.*?"nodeID":\s*"(ND_[A-Za-z0-9]+)"')


@dataclass(frozen=True)
class ClusterOptions:
    root: Path
    run_dir: Path
    hosts: tuple[str, ...]  # one test host per node; Redis runs on the first
    agents: tuple[str, ...] = ("all",)
    base_port: int = 8880  # node i's livekit-server: base_port + 1000 i, and the two next
    # Every node posts its webhooks to every service (not only its own): each event then
    # reaches all services, which must act on it once between them.
    webhooks_to_all: bool = True


@dataclass
class Cluster:
    """``settings`` are shared by every node (keys, secrets, the shared database)."""

    settings: Settings
    options: ClusterOptions
    nodes: list[Stack] = field(default_factory=list)
    redis: RedisServer | None = None

    def start(self) -> None:
        if len(self.options.hosts) < 2:
            raise HarnessError("cluster", "needs at least two hosts")
        try:
            self.redis = RedisServer(
                self.options.root, self.options.run_dir / "redis", self.options.hosts[0]
            )
            self.redis.start()
            self.nodes = [
                Stack(self.settings, self._node_options(index, host))
                for index, host in enumerate(self.options.hosts)
            ]
            # The nodes are separate machines: they start side by side (a Stack's start
            # waits on health checks, so threads overlap the waits, not the CPU).
            with ThreadPoolExecutor(len(self.nodes), thread_name_prefix="node") as pool:
                for started in [pool.submit(node.start) for node in self.nodes]:
                    started.result()
            for index, node in enumerate(self.nodes):
                logger.info("node %d (%s) is %s", index, node.options.host, self.node_id(index))
        except BaseException:
            self.stop()
            raise

    def _node_options(self, index: int, host: str) -> StackOptions:
        assert self.redis is not None
        # livekit-server binds its RTC ports on every address of the host, whatever
        # --bind says, so nodes sharing a namespace (and its session stack on 7880) need
        # ports of their own: 8880.., 9880.., as in LiveKit's own multi-node tests.
        port = self.options.base_port + 1000 * index
        return StackOptions(
            root=self.options.root,
            run_dir=self.options.run_dir / f"node{index}",
            host=host,
            livekit_port=port,
            rtc_tcp_port=port + 1,
            rtc_udp_port=port + 2,
            extra_webhook_urls=tuple(
                f"http://{other}:{StackOptions.api_port}"
                for other in self.options.hosts
                if other != host and self.options.webhooks_to_all
            ),
            agents=self.options.agents,
            redis_address=self.redis.address,
        )

    def stop(self) -> None:
        try:
            if self.nodes:
                with ThreadPoolExecutor(len(self.nodes), thread_name_prefix="node") as pool:
                    list(pool.map(Stack.stop, self.nodes))
        finally:
            self.nodes.clear()
            if self.redis is not None:
                self.redis.stop()
                self.redis = None

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def node_id(self, index: int) -> str:
        """The LiveKit node id of node ``index``, from its server's log (the last start's:
        a restarted node is a new node to LiveKit)."""
        log = self.nodes[index].options.run_dir / "livekit-server.log"
        found = _NODE_ID.findall(log.read_text(errors="replace")) if log.exists() else []
        if not found:
            raise HarnessError("cluster", f"node {index} logged no node id in {log}")
        return str(found[-1])

    def node_of_room(self, room: str) -> int | None:
        """Which node hosts ``room``, as Redis's room->node map says; None if no node does."""
        assert self.redis is not None
        node_id = self.redis.command("HGET", "room_node_map", room)
        if not node_id.startswith("ND_"):
            return None
        ids = {self.node_id(i): i for i in range(len(self.nodes))}
        return ids.get(node_id)

    def registered_nodes(self) -> int:
        """How many nodes LiveKit's registry holds (a dead node stays until it is noticed)."""
        assert self.redis is not None
        return int(self.redis.command("HLEN", "nodes").lstrip(":") or 0)

    def kill_node(self, index: int) -> None:
        """SIGKILL node ``index``'s livekit-server: a machine whose SFU died. Its service
        and worker stay up, as they would on a machine whose other processes survived."""
        self.nodes[index].kill("livekit-server")

    def restart_node(self, index: int) -> None:
        """Start node ``index``'s livekit-server again (after ``kill_node``); ready when this
        returns. It joins the cluster under a new node id."""
        self.nodes[index].restart("livekit-server")
