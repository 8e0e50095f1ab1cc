"""What machine this is: how many CPUs the process may really use (affinity and cgroup quota:
``cpus``), the instruction-set flags that decide which kernels run (one table: ``isa``), the
fingerprint a run is recorded with, hard keys hashed into an id (``fingerprint``), and what
the machine allows before any work starts: a device, a writable folder, memory for a batch
(``limits``)."""
