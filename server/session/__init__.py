"""Per-connection session: pure state machine, connection shell, and one turn's task group."""
