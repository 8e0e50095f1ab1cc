"""Connecting to an existing Ray cluster, and the nodes in it that run the fleet's cells."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlparse

RESOURCE = "resnet_bench"  # a node offers 1: one timed cell at a time on it
LABEL = "resnet-bench/kind"  # the operator's name for the node's machine kind
CONNECT_TIMEOUT_S = 10.0  # an address where nothing answers within this is bad input


def ray_module():
    try:
        import ray
    except ImportError:
        raise ValueError("the fleet needs Ray, which is not installed: pip install -e \".[fleet]\"") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """HOST:PORT of a ``HOST:PORT`` or ``ray://HOST:PORT`` address (None for ``auto``)."""
    if address == "auto":
        return None
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname or not parsed.port:
        raise ValueError(f"--address {address!r}: give auto, HOST:PORT or ray://HOST:PORT")
    return parsed.hostname, parsed.port


def probe(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """ValueError in one line when nothing listens at ``address`` within ``timeout_s``."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        raise ValueError(f"--address {address}: no Ray cluster answers there within {timeout_s:g} s "
                         f"({exc.strerror or exc})") from None


def connect(address: str, node_ip: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S):
    """``ray.init`` on an existing cluster (never starts one); the driver binds to ``node_ip``
    when given (a loopback address in tests)."""
    ray = ray_module()
    probe(address, timeout_s)
    if ray.is_initialized():
        return ray
    options = {"address": address, "log_to_driver": False, "configure_logging": False}
    if node_ip and not address.startswith("ray://"):
        options["_node_ip_address"] = node_ip
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError) as exc:
        raise ValueError(f"--address {address}: cannot join the Ray cluster there ({str(exc).splitlines()[0]})") \
            from None
    return ray


@dataclass(frozen=True)
class Node:
    node_id: str
    address: str
    kind: str
    cpus: int
    labels: dict


def fleet_nodes(ray) -> list[Node]:
    """The alive nodes that offer the project's resource; a node without a kind label is its own
    kind (named by its address)."""
    found = []
    for node in ray.nodes():
        resources = node.get("Resources", {})
        if not node.get("Alive") or resources.get(RESOURCE, 0) < 1:
            continue
        labels = dict(node.get("Labels") or {})
        address = node.get("NodeManagerAddress", "?")
        found.append(Node(node["NodeID"], address, labels.get(LABEL) or f"node-{address}",
                          int(resources.get("CPU", 1)), labels))
    return found


def require_nodes(ray, address: str) -> list[Node]:
    nodes = fleet_nodes(ray)
    if not nodes:
        raise ValueError(f"the Ray cluster at {address} has no alive node offering the {RESOURCE!r} resource "
                         f"(start workers with --resources '{{\"{RESOURCE}\": 1}}' --labels {LABEL}=KIND)")
    return nodes
