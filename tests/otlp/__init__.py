"""Tests of the otlp receiver (receivers/otlp)."""
