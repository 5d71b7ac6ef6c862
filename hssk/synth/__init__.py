"""Synthetic Vietnamese population and source-system feeds, with ground truth.

Public API::

    from hssk.synth import generate, iter_persons, ErrorRates, ErrorModel, Manifest
    manifest = generate(Path("out"), persons=2000, province="01", seed=1, district="Ba Đình")
"""

from hssk.synth.errors import ErrorModel, ErrorRates
from hssk.synth.generate import generate, iter_persons, iter_population, make_world
from hssk.synth.output import Manifest

__all__ = [
    "ErrorModel",
    "ErrorRates",
    "Manifest",
    "generate",
    "iter_persons",
    "iter_population",
    "make_world",
]
