"""TemplateTo Bridge's platform-neutral core."""

__version__ = "0.1.0"
