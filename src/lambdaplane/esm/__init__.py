"""Event source mappings: Lambda polling queues and streams and invoking functions."""
