"""web component."""
