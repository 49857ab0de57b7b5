"""The application: run configs, the run pipeline, the leaderboard, the report and the
``embedlens`` command line."""
