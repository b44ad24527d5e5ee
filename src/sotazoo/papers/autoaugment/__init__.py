"""AutoAugment: Learning Augmentation Policies from Data."""
