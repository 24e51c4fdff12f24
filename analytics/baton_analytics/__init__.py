"""Baton for analysts: replay and re-score history, export topics, the funnel report."""
