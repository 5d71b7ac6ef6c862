"""registry component."""
