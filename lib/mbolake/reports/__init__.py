"""Run reports: what the notebooks in ``reports/`` show (``validation``, ``features``,
``sweep``) and how they are rendered to HTML (``render``). Reports only read."""
