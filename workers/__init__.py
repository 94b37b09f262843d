"""RQ entry points. Each job is an importable function taking ids; the work is in hotline.services."""
