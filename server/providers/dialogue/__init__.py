"""Dialogue providers: ``local`` (offline intent engine) and ``openai`` (any compatible LLM)."""
