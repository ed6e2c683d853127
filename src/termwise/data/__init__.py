"""Data components shared by recipes."""
