"""Identity: accounts (domains), projects, users, groups, roles, passwords and tokens."""
