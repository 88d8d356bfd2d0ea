"""A minimal pod network for the offline kind node image (kind's kindnetd is not served by
the module proxy).

Run by the ``agentia-cni`` DaemonSet (host network, privileged) on every node; standard
library only, copied into its image by `agentia kind build`. Every 10 s it reads the
nodes from the API server and, for its own node, writes a CNI config (``ptp`` with
``host-local`` addresses from the node's pod CIDR, ``portmap``); for every other node, a
route to that node's pod CIDR through its address; and masquerades traffic from its pods
to anything outside the cluster's pod subnet. All nodes share one Docker network, so
plain routes are enough.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from typing import Any

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
CONF_DIR = "/etc/cni/net.d"
CONF_NAME = "10-agentia.conflist"
CHAIN = "AGENTIA-MASQ"
Node = dict[str, Any]


def conflist(pod_cidr: str, mtu: int = 1500) -> dict[str, Any]:
    """The CNI config of a node whose pods take addresses from ``pod_cidr``."""
    family_default = "::/0" if ":" in pod_cidr else "0.0.0.0/0"
    return {
        "cniVersion": "0.4.0",
        "name": "agentia",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "mtu": mtu,
                "ipam": {
                    "type": "host-local",
                    "dataDir": "/run/cni-agentia-ipam",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": family_default}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def internal_ip(node: Node) -> str | None:
    for addr in node.get("status", {}).get("addresses", []):
        if addr.get("type") == "InternalIP" and ":" not in addr.get("address", ":"):
            return str(addr["address"])
    return None


def pod_cidr(node: Node) -> str | None:
    spec = node.get("spec", {})
    cidrs = [c for c in spec.get("podCIDRs") or [spec.get("podCIDR")] if c and ":" not in c]
    return cidrs[0] if cidrs else None


def routes(nodes: list[Node], me: str) -> dict[str, str]:
    """Pod CIDR -> the address of the node that owns it, for every node but ``me``."""
    out = {}
    for node in nodes:
        cidr, ip = pod_cidr(node), internal_ip(node)
        if node["metadata"]["name"] != me and cidr and ip:
            out[cidr] = ip
    return out


def masquerade_rules(own_cidr: str, cluster_cidr: str) -> list[list[str]]:
    """iptables rules (nat table) of the chain: pods reach the outside as their node."""
    return [
        ["-A", CHAIN, "-d", cluster_cidr, "-j", "RETURN"],
        ["-A", CHAIN, "-s", own_cidr, "-j", "MASQUERADE"],
    ]


def _api_nodes() -> list[Node]:
    endpoint = os.environ.get("CONTROL_PLANE_ENDPOINT") or (
        f"{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"
    )
    with open(f"{SA}/token") as f:
        token = f.read().strip()
    ctx = ssl.create_default_context(cafile=f"{SA}/ca.crt")
    req = urllib.request.Request(
        f"https://{endpoint}/api/v1/nodes", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310
        return list(json.load(resp)["items"])


def _write_conf(text: str) -> bool:
    path = os.path.join(CONF_DIR, CONF_NAME)
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(CONF_DIR, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return True


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _masquerade(own_cidr: str, cluster_cidr: str) -> None:
    _run("iptables", "-t", "nat", "-N", CHAIN)
    _run("iptables", "-t", "nat", "-F", CHAIN)
    for rule in masquerade_rules(own_cidr, cluster_cidr):
        _run("iptables", "-t", "nat", *rule)
    jump = ["POSTROUTING", "-j", CHAIN]
    if not _run("iptables", "-t", "nat", "-C", *jump):
        _run("iptables", "-t", "nat", "-A", *jump)


def sync(me: str, cluster_cidr: str) -> bool:
    """One pass; True once this node's pod network is configured."""
    nodes = _api_nodes()
    mine = next((n for n in nodes if n["metadata"]["name"] == me), None)
    own = pod_cidr(mine) if mine else None
    if not own:
        print(f"agentia-cni: node {me} has no pod CIDR yet", flush=True)
        return False
    if _write_conf(json.dumps(conflist(own), indent=2)):
        print(f"agentia-cni: {me} pods in {own}", flush=True)
    for cidr, via in routes(nodes, me).items():
        _run("ip", "route", "replace", cidr, "via", via)
    _masquerade(own, cluster_cidr)
    return True


def main() -> int:
    me = os.environ["NODE_NAME"]
    cluster_cidr = os.environ.get("POD_SUBNET", "10.244.0.0/16")
    while True:
        try:
            sync(me, cluster_cidr)
        except Exception as exc:  # keep trying: the API server may be restarting
            print(f"agentia-cni: {exc}", file=sys.stderr, flush=True)
        time.sleep(10)


if __name__ == "__main__":
    sys.exit(main())
