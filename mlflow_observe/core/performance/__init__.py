"""Performance: realised metrics, estimation without labels (CBPE for classifiers,
DLE for regressors), degradation against the baseline, and streamed counting.
"""
