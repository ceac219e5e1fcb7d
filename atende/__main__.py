"""``python -m atende`` runs the command line."""

from atende.cli import main

main()
