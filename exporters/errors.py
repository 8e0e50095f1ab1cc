class ExportError(ValueError):
    """An export that cannot be done or produced a file that fails its check."""
