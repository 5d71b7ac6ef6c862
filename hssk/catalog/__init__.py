"""catalog component."""
