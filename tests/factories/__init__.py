"""Builders of test data shared by the test folders and the benchmarks: hồ sơ files
(``samples``), linkage records with known truth (``linkage``), a small supervised province
(``supervision``). Kept out of the product package."""
