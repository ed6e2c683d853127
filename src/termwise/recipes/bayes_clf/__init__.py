"""A Bayesian sequence classifier, and a diagnosis of why it will not learn
(``termwise bayes-clf``): ``config``, ``data``, ``model``, ``recipe``, ``cli``."""
