"""records component."""
