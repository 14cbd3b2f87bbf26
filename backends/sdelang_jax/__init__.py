"""jax backend (placeholder package until its issue lands)."""
