"""Drift: options and univariate decisions, data integrity, multivariate detectors,
segments, root cause (impact x drift) and the comparison of a counted window.
"""
