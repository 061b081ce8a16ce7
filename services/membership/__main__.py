"""`python -m services.membership`: serve on $PORT (8001)."""

from shared.serve import serve

serve("services.membership.main:build_app", "membership", default_port=8001)
