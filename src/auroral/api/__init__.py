"""The management API: HTTP server, request pipeline, protocol layer, SigV4, authorization table."""
