"""ab: experiment analysis of botify event logs (user-level metrics, Welch CIs, SRM, plot)."""
