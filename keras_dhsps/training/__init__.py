"""Training a hasher.

`fit`, its callbacks, optimizers, distribution and the run directory.
"""
