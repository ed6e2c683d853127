"""A variational bottleneck with free bits, a KL curriculum and a teacher term
(``termwise vae``): ``config``, ``data`` (+ ``teacher``), ``model``, ``metrics``,
``recipe`` (setup, train, evaluate, save), ``sample``, ``cli``."""
