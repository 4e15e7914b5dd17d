"""The benchmarks' parts: synthetic captures, measuring, and the offline and live runs."""
