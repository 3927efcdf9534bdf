"""Exporter debug: what reaches it, printed to stderr."""
