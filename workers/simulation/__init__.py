"""Simulations: does active learning help on *my* data, before labels are spent?

- :mod:`workers.simulation.engine` replays annotation on a labelled data set with the
  service's own features, models and strategies (``alrank simulate`` runs it directly);
- :mod:`workers.simulation.job` runs the same replay as an RQ job and keeps its data and
  results in Redis (``POST /v1/simulations``, whose HTTP edge is :mod:`service.simulations`).
"""
