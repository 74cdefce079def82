"""Releases: the canary state machine, its children, the analysis against Prometheus.

- `state`: pure. The rollout status and what was observed in, the next status, the serving
  plan (stable version, canary version and weight) and Events out.
- `canary`: pure builders of the canary's children (Deployment, Service, ServiceMonitor,
  nginx canary Ingress) and the HTTPRoute weights.
- `analysis`, `prometheus`, `quality`, `probes`: the checks that judge a canary (PromQL
  queries, the nDCG@10 gate on a golden set, synthetic probe traffic).
"""
