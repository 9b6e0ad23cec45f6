"""``python -m synthguard`` runs the command line."""

from synthguard.cli.main import main

main()
