"""Use cases: take a session and plain values, return plain values. They never commit."""
