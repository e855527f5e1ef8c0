"""The earthplat FastAPI platform: data collection, labelling, inference and fine-tuning jobs."""
