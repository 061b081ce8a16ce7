"""The union office in the browser: server-rendered pages over the services' HTTP APIs, with the user's token."""
