"""Utilities every layer may use, and nothing of the project's own: how an exception becomes a
row's status and one-line reason (``errors``), which version of a package is installed
(``versions``), atomic file writes, file hashes and where the source checkout is (``files``)."""
