"""Small helpers shared by every layer: atomic I/O and logging set-up."""
