"""sim: a seeded music world and the listener simulator that drives botify."""
