"""alrank's engine: features, models, query strategies, jobs and the Redis data layout.

Nothing here imports Flask or ``service``: the HTTP edge calls in, never the reverse.
"""
