"""access component."""
