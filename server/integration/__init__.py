"""Integration: outbound events for the ERP and integrators (docs/integration.md).

- ``outbox``: the transactional outbox writer (one INSERT per event, in the caller's
  transaction) and the CloudEvents 1.0 envelope built from a row; no Flask, no MQTT
  client, so the station's database adapters may call it;
- ``deliver``: the delivery loop (webhooks with HMAC signatures, retries with backoff
  and jitter, dead letters; MQTT at QoS 1) and ``taktline deliver``;
- ``subscriptions``: webhook subscriptions and replay (the page and the API share it);
- ``views``: the admin page.

Nothing is imported here, so ``import server.integration.outbox`` stays light.
"""
