"""NASNet: Learning Transferable Architectures for Scalable Image Recognition."""
