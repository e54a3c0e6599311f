"""The image catalogue's rules: images, jobs, imports, tags, quotas."""
