"""From codes to rankings.

Packed codes, the Hamming index, the code database, evaluation.
"""
