"""Measuring the classifier on labelled tools, beside the peers, on the same file."""
