"""Profiles: column kinds, per-column counts in the reference's bins, the row sample,
the :class:`DataProfile` that holds them, and feature impact measured at baseline time.
"""
