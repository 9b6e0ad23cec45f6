"""Staff accounts: users, argon2 password hashes, roles, sessions for people and tokens for machines."""
