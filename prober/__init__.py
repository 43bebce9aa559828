"""prober: Encord private-cloud upload specs from bucket listings, probing video headers only."""

__version__ = "0.1.0"
