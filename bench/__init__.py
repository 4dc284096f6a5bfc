"""The benchmark harness: ``make bench`` (quick) and ``make bench-full``; see bench/README.md."""
