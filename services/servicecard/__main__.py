"""`python -m services.servicecard`: serve on $PORT (8003)."""

from shared.serve import serve

serve("services.servicecard.main:build_app", "servicecard", default_port=8003)
