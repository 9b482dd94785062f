"""Performance data: measured kernel tables, calibration profiles, published serving
measurements and MTP acceptance, with their loaders.
"""
