"""The local cluster's node agent: a kubelet that runs pods as processes on this machine.

Modules, from the bottom up: ``netplan`` (addresses and names of one cluster, the host-wide
slot lease), ``network`` (bridge, per-pod network namespaces), ``images`` (image -> program
table), ``podenv`` and ``podvolumes`` (the kubelet's env and volume rules, pure), ``launch``
(the per-container launcher: namespaces, overlay root, mounts, user, exec), ``probes``,
``podstatus`` (pure status computation), ``pods`` (one pod's lifecycle), ``dns``, ``svcproxy``
and ``promsd`` (what pods find around them), ``agent`` (the whole), ``logs`` (reading output).
"""
