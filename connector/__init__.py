"""TemplateTo Bridge's platform-neutral core."""

__version__ = "0.1.0"


def main() -> None:
    """The ``templateto-bridge`` command. Its module is imported again by every render process
    it starts (multiprocessing prepares a child's ``__main__`` so), so it stays light: the
    command line and the app are imported only here."""
    from .cli import main as command

    command()
