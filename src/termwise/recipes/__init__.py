"""Recipes: one folder per system (config, data, model, recipe, score, cli).

A recipe's ``recipe.py`` has the same shape everywhere: ``setup`` (read and check every
input, build the model and the trainer), ``train``, ``evaluate`` and ``save``. Recipes
use the engine (terms, objective, health, trainer) and the shared components (models,
data); the engine never imports a recipe, and no recipe imports another's internals.
"""
