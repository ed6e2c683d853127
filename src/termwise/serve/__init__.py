"""``termwise serve``: a trained btrm or pref model behind an HTTP endpoint (FastAPI +
uvicorn) with dynamic batching, limits and an optional bearer token. Uses the models'
load APIs (``termwise.btrm``, ``termwise.pref``), never a recipe's internals."""
