"""affect-sdk benchmarks: throughput, latency, cold start, memory and MACs on this machine (`python -m benchmarks`).

Timings live here, not in tests. Every timing is the median of repeated runs; the machine's core count and load
are recorded beside the numbers, since the figures only mean something next to the machine they came from.
"""
