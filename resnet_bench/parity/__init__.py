"""Parity: does each backend compute what PyTorch fp32 computes? Running a backend is apart from
judging its outputs (Polygraphy's comparator): ``verdict`` judges outputs on the same images
against the precision's tolerance and the compute precision the precision table expects;
``accuracy`` judges a cell on real images, by top-1 agreement and, with labels, top-1 accuracy
against fp32's (MLPerf's rule)."""
