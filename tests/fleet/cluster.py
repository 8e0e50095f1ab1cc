"""A Ray cluster of several nodes on this machine, each node on its own loopback address, started
with the documented ``ray start`` commands (docs/fleet.md), for the fleet's tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalCluster:
    """``ray start --head`` on 127.0.0.2 (no fleet resource: the driver's node) and one
    ``ray start --address`` per worker, each on its own 127.0.0.N, 1 CPU, the fleet's resource and
    a kind label, started one after the other. Each node is its own process group, so a test can remove one."""

    def __init__(self, kinds: list[str], root: Path) -> None:
        self.head_ip, self.root = "127.0.0.2", root
        self.port = free_port(self.head_ip)
        self.address = f"{self.head_ip}:{self.port}"
        self.nodes: list[subprocess.Popen] = []
        self.removed: set[int] = set()  # indices into nodes
        self.temp = Path(f"/tmp/rb{os.getpid()}{self.port}")  # Ray's socket paths must stay short
        self._start(["--head", "--port", str(self.port), "--node-ip-address", self.head_ip, "--num-cpus", "0",
                     "--include-dashboard=false", "--temp-dir", str(self.temp)], "head")
        self._wait_for(0)
        for i, kind in enumerate(kinds):
            ip = f"127.0.0.{3 + i}"
            self._start(["--address", self.address, "--node-ip-address", ip, "--num-cpus", "1",
                         "--resources", json.dumps({"resnet_bench": 1}), "--labels", f"resnet-bench/kind={kind}"],
                        f"node-{i}")
            # one at a time: two raylets started together can draw the same free port and one dies
            # ("bind: Address already in use" in its raylet.err)
            self._wait_for(i + 1)

    def _start(self, args: list[str], name: str) -> None:
        log = open(self.root / f"{name}.log", "w")
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        self.nodes.append(subprocess.Popen([str(RAY), "start", "--block", "--disable-usage-stats", *args],
                                           stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))

    def _wait_for(self, workers: int, timeout_s: float = 60) -> None:
        """Until ``workers`` nodes offer the fleet's resource (asked of the cluster from outside)."""
        code = (f"import ray, json; ray.init(address={self.address!r}, _node_ip_address={self.head_ip!r}, "
                f"log_to_driver=False); print(json.dumps(sum(1 for n in ray.nodes() if n['Alive'] and "
                f"n['Resources'].get('resnet_bench'))))")
        deadline, result = time.time() + timeout_s, None
        while time.time() < deadline:
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(workers)]:
                return
            time.sleep(1)
        logs = "\n".join(f"--- {log.name}: " + log.read_text()[-600:] for log in sorted(self.root.glob("*.log")))
        raise TimeoutError(f"the local Ray cluster did not come up with {workers} workers; the last check: exit "
                           f"{result.returncode}, out {result.stdout[-300:]!r}, err {result.stderr[-1500:]!r}\n{logs}")

    def remove(self, index: int) -> None:
        """Kill worker node ``index`` (its ``ray start`` and everything it started)."""
        process = self.nodes[1 + index]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.removed.add(1 + index)

    def stop(self) -> None:
        """Kill every node's process group (a SIGTERM'd node drains for 30 s first: nothing here
        needs that)."""
        for index, process in reversed(list(enumerate(self.nodes))):
            if index not in self.removed:  # a removed node's group is gone already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(self.temp, ignore_errors=True)
