"""Benchmarks of HSSK's hot paths (``hssk bench ...``), kept out of the product package.

They live in the source checkout and are importable from an editable install
(``pip install -e .``); a wheel of the platform does not carry them.
"""
