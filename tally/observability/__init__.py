"""Operations: Prometheus metrics at /metrics, structured JSON logs, a request id on every request."""
