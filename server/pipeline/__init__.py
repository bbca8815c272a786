"""Session pipeline pieces (sans-I/O where possible)."""
