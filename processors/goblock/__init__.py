"""goblock processor: joins app spans with eBPF / Go execution-trace events (README.md)."""
