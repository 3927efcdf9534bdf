"""Components of this kind, one folder each (mapped into the otel_goblock namespace)."""
