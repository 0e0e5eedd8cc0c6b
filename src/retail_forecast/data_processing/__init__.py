"""Read, validate, clean and fingerprint Kaggle-layout sales data; synthetic generator."""
