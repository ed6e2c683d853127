"""termwise inside the training code people already have: :mod:`.transformers` (a
``TrainerCallback`` and a ``compute_loss`` helper for Hugging Face and TRL trainers)."""
