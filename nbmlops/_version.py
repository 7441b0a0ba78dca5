"""Single source of the package version (read by hatchling and the server's status route)."""

__version__ = "0.1.0"
