"""Operations: what a monitoring system reads (docs/operations.md).

- ``metrics``: the process's Prometheus instruments (ingest, SSE streams) in
  prometheus_client's multiprocess mode, sharing one folder (``METRICS_DIR``) between
  the gunicorn workers, ``taktline serve`` and ``taktline ingest``; no Flask here;
- ``views``: ``GET /api/v1/metrics`` (an API token with ``metrics:read``), those
  instruments plus figures read from the database at scrape time (events by station,
  kind and verdict; dead letters; the integration outbox).
"""
