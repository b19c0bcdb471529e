"""rtnt: paired guitar captures to real-time causal neural models in RTNeural JSON."""

__version__ = "0.1.0"
