"""The four services; each imports only the kernel (`shared`), never another service."""
