"""Table definitions that several Orion databases share (imported by their tables.py)."""
