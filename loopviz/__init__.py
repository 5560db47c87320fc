"""loopviz: why looped transformers learn what single-pass transformers do not.

The science lives in pure modules (markov, models, curvature, quadratic, shift);
training and the run store turn them into runs; pages only draw.
"""
