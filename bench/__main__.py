"""`python -m bench` (or `make bench`): every benchmark, results written to bench/results/."""

from bench import ingest

ingest.main([])
