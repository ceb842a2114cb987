"""``python -m catalog`` runs the command line."""

from catalog.cli import main

main()
