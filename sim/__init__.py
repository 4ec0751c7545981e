"""sim: a seeded music world and the listener simulator that drives botify.

- ``generate`` / ``world``: the world generator and its CLI (``python -m sim.world``);
- ``catalog``: the course's data files, read and written;
- ``listener``: the course's listener model as pure functions;
- ``env``: ``RecEnv``, a Gymnasium environment of one listening session per episode;
- ``agents`` / ``remote`` / ``wire``: in-process recommenders, the HTTP agent for botify and its HTTP client;
- ``run`` / ``summary``: the runner CLI (``python -m sim.run``) and its summary table;
- ``cli`` / ``errors``: what the CLIs share (one-line usage errors) and the input errors they report.
"""
