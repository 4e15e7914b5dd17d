"""What only tests and benchmarks need: frame builders, network labs, interpreters."""
