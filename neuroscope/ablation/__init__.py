"""In-model ablation: silence ranked neurons and re-measure what the model does."""
