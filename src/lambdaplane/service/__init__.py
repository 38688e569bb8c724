"""Domain services: what each Lambda operation does, independent of HTTP."""
