"""MQTT for the server: the client factory and publisher, the embedded broker, live
station updates for SSE, and the broker's per-station credentials."""
