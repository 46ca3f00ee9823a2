"""Where training images come from and how they reach the model: sources, the decode-once cache, preprocessing,
batches and augmentation."""
