"""Backups of the application's database (docs/OPERATIONS.md): pg (client tools, connections, passfile),
archive (the directory, manifests), dump (create), verify (scratch restore), restore (swap in), retention,
daily (the beat's job), status (/healthz and the System page)."""
