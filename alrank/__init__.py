"""alrank's client side: ``alrank.client`` (the Python client) and ``alrank.cli`` (the
``alrank`` commands that talk to a running service)."""
