"""Runnable examples of modelyard's workflow."""
