"""Reports of polls from anyone, and the operator's /admin: sign-in, moderation, the audit log."""
