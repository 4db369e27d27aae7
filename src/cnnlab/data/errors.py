class DataError(ValueError):
    """A dataset is missing, corrupt or not laid out as expected. The message says what was
    found and how to fix it; it is raised before any training starts."""
