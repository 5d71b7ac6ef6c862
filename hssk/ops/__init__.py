"""Operating an installation: backup and restore, health checks (doctor), recurring jobs."""
