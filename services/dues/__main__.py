"""`python -m services.dues`: serve on $PORT (8005)."""

from shared.serve import serve

serve("services.dues.main:build_app", "dues", default_port=8005)
