"""The kernel's HTTP side (FastAPI lives only here): the app, the route helper, authentication, request guards."""
