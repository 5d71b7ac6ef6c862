"""HSSK — electronic health record platform for Vietnam (Hồ sơ sức khỏe điện tử)."""

__version__ = "0.1.0"
