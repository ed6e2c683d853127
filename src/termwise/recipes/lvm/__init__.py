"""Next-vector prediction with a directional margin and five gates (``termwise lvm``):
``config``, ``data`` (embedding, windows), ``diagnose`` (direction diagnostic), ``model``,
``recipe`` (setup, train, evaluate, save), ``gates``, ``cli``."""
