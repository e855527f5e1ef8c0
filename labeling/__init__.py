"""Labelling of geospatial windows: projects, class schemas, tasks, annotations and review."""
