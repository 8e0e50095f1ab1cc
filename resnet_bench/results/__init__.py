"""Results: the one typed definition of a row (``schema``: the CSV header, results/schema.json and
the docs' column table are generated from it), the one row builder every command's rows go
through (``rows``: identity, MACs and GFLOP/s, roof fraction, what the runtime reported,
failures as rows), and run folders on disk, written row by row atomically and read back as a
DataFrame (``runs``; ``resnet_bench.results.load`` is the public reader)."""

from resnet_bench.results.runs import RunWriter, load, load_samples

__all__ = ["RunWriter", "load", "load_samples"]
