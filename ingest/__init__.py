"""The MQTT ingest worker: formats, validation, the consent gate, the batching writer, metrics."""
