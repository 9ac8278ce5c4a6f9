"""Grids, plots, markdown and HTML reports, built from run-directory files only."""
