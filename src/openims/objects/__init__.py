"""Object storage: users' buckets (image files to import) and the service's own image store."""
