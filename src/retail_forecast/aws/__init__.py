"""AWS side: S3 storage of bundles and data, SageMaker deploy requests."""
