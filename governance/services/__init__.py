"""Core services: the one path every statement takes (see DESIGN.md)."""
