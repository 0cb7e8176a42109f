"""Sparse autoencoders on a store site: training (`train.py model=sae`, training.py), the model
(model.py), SAELens' on-disk layout (saelens.py: save_sae, load_sae) and SAE latents as a site
(site.py). Nothing is imported here, so `neuroscope.sae.site` loads without torch."""
