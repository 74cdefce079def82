"""The local cluster's data plane: Traefik (Gateway API and nginx-Ingress providers),
Prometheus, and the third-party CRDs they and the operator need.

``hack.cluster.up(..., data_plane=True)`` (the default of ``make cluster-up``) installs the
CRDs, starts Prometheus and Traefik as processes, and creates the GatewayClass, the Gateway
and the ``nginx`` IngressClass; ``down`` stops them with the cluster.
"""
