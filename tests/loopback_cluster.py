"""A multi-node Ray cluster on 127.0.0.1, run in its own process and driven over stdin/stdout.

Why a process of its own: Ray reads ``RAY_AUTH_MODE`` once per process, when it is first
imported, and the test process has imported Ray long before; here the token environment is set
before Ray is imported. ``ray.cluster_utils.Cluster`` (Ray's own multi-node test harness) starts
real GCS, raylet, dashboard and worker processes per node; every node uses 127.0.0.1 (``ray
start`` would advertise the machine's address instead).

Protocol: one JSON line per command on stdin, one JSON line of state on stdout after each:
``{"op": "remove", "raylet_pid": PID}`` (kill that worker node: raylet and workers, no drain),
``{"op": "add"}`` (a fresh worker node), ``{"op": "quit"}``. State: ``{"address": ...,
"dashboard": "127.0.0.1:PORT", "workers": [{"raylet_pid": ..., "node_id": ...}]}``.

    python tests/loopback_cluster.py --workers 2 --cpus 2     # env: RAY_AUTH_MODE, RAY_AUTH_TOKEN
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--workers", type=int, default=2)
    args.add_argument("--cpus", type=int, default=2)
    opts = args.parse_args()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node and driver on 127.0.0.1
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        # As cluster.yaml's head: no CPUs (no Train worker), room for the trial drivers.
        "num_cpus": 0, "resources": {"driver_slot": 100}, "include_dashboard": True,
        "dashboard_host": "127.0.0.1", "node_ip_address": "127.0.0.1",
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
                           "health_check_initial_delay_ms": 1000}})
    workers = []

    def add():
        workers.append(cluster.add_node(num_cpus=opts.cpus, node_ip_address="127.0.0.1"))
        cluster.wait_for_nodes()

    def state():
        print(json.dumps({"address": cluster.address, "dashboard": cluster.head_node.address_info["webui_url"],
                          "workers": [
            {"raylet_pid": n.all_processes["raylet"][0].process.pid, "node_id": n.node_id}
            for n in workers]}), flush=True)

    for _ in range(opts.workers):
        add()
    state()
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            if cmd["op"] == "add":
                add()
            elif cmd["op"] == "remove":
                node = next(n for n in workers if n.all_processes["raylet"][0].process.pid == cmd["raylet_pid"])
                cluster.remove_node(node, allow_graceful=False)
                workers.remove(node)
            state()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
