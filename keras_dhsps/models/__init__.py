"""Building the hasher: backbones, AlexNet, the custom layers."""
