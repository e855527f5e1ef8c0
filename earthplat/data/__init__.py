"""Windows, sources, materialisation into aligned time series, datasets and data modules."""
