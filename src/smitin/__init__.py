"""smitin: steer MusicGen with per-head probes and self-monitoring (SMITIN, Koo et al. 2025)."""

__version__ = "0.1.0"
