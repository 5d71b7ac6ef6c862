"""share component."""
