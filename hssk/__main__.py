"""``python -m hssk`` runs the command line."""

from hssk.cli import app

app()
