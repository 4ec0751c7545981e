"""botify: a music next-track recommendation service with A/B routing."""
