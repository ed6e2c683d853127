"""Recipes: one readable file per trainer (setup, train, evaluate, save)."""
