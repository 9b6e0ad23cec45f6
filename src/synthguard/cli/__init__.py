"""The ``synthguard`` command line (Typer); ``main.py`` holds the app."""
