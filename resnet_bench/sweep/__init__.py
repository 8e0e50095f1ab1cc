"""The benchmark sweep: what it runs (``config``: cells, profiles and their stop rules, resume),
running it cell by cell into a run folder with parity first and failures as rows (``sweep``),
and timing one cell on its own (``single``: ``resnet-bench time``)."""
