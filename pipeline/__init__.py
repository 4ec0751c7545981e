"""pipeline: the whole loop in one command — world, service, day-1 logs, LightFM, the HW_2 A/B test, report."""
