"""Cross-cutting machinery: settings, errors, logging, the job executor and the app factory."""
