"""N-channel colour composites (E8)."""
