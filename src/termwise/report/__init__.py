"""``termwise report RUN_DIR``: a run as one self-contained HTML page of figures."""
