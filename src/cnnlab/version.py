"""cnnlab's version, written once: the package, its command line and pyproject.toml read it here."""

__version__ = "0.1.0"
