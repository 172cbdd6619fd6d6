"""Infrastructure every process shares: configuration, the database, Redis (keys and channels), logs,
secrets, the embedded PostgreSQL/Redis services, migrations and process liveness."""
