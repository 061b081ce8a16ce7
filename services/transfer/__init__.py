"""Transfer: the transfer process across organisations, and regional employment changes that start it."""
