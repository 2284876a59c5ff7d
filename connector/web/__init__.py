"""The web pages, served by the same app: signing in and the API keys page."""

from .pages import blueprint

__all__ = ["blueprint"]
