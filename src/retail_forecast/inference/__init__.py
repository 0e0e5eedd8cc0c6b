"""Inference: preprocess, predictor backends, postprocess, SageMaker handler."""
