"""`python -m services.transfer`: serve on $PORT (8002)."""

from shared.serve import serve

serve("services.transfer.main:build_app", "transfer", default_port=8002)
