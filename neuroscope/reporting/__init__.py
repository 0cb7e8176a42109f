"""Results files, experiment loggers, tables and reports."""
