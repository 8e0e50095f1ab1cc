"""One sweep across a fleet of machines on Ray, and the cheapest target that meets the SLA.

A fleet is an existing Ray cluster whose nodes offer the project's resource (``resnet_bench``, one
per node: one timed cell per node at a time) and say their machine kind in a label
(``resnet-bench/kind``). ``cluster`` connects to it and lists those nodes; ``task`` is what runs on a
node (a fresh process per task: a sweep of one depth x backend x precision, artifacts built and
parity checked there, rows streamed back as each cell finishes); ``run`` is the driver (every kind
runs every cell, rows written atomically into one run folder per node fingerprint, retries on a dead
worker or node, resume); ``prices`` turns a price file into the cost of a million images at the SLA.
Ray is an optional extra (``pip install -e ".[fleet]"``): without it the command says so."""
