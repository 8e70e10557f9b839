"""LXD and Incus external provider for GARM."""

__version__ = "0.1.0"
