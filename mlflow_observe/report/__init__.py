"""Rendering results for people: plots (matplotlib) and a self-contained HTML report."""
