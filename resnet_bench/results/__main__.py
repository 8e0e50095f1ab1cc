"""``python -m resnet_bench.results``: rewrite results/schema.json and docs/results-schema.md's table."""

from resnet_bench.results.schema import write_schema

print(write_schema())
