#!/bin/sh
# Run before kubelet on cgroup v1 hosts. kind's entrypoint makes the /kubelet and
# /kubelet.slice cgroups in the hierarchies Docker mounted; systemd in the node then
# mounts the kernel's other v1 hierarchies too (hugetlb, net_cls, perf_event where the
# host did not mount them), and kubelet refuses to start while its cgroup root is missing
# from any mounted hierarchy. Make it there, as the entrypoint does for the others.
set -eu
[ -f /sys/fs/cgroup/cgroup.controllers ] && exit 0
findmnt -lun -o target -t cgroup | while IFS= read -r hierarchy; do
  case "$hierarchy" in /sys/fs/cgroup/*/*) continue ;; esac  # hierarchy roots only
  for root in kubelet kubelet.slice; do
    [ -d "$hierarchy/$root" ] && continue
    mkdir -p "$hierarchy/$root"
    mount --bind "$hierarchy/$root" "$hierarchy/$root"  # systemd must not remove it
  done
done
