"""monitor component."""
