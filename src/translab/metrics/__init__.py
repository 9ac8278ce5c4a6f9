"""Metrics: FID/KID with labelled feature extractors (Inception pool3, translab's classifier), colour
faithfulness (hue error), pixel transport cost, target accuracy and structure preservation (SSIM)."""
from translab.metrics.color import hue_error, mean_squared_distance, target_accuracy, transport_cost
from translab.metrics.frechet import Extractor, distances, frechet_distance, kernel_distance, labelled_distances
from translab.metrics.structure import ssim

__all__ = ["Extractor", "distances", "frechet_distance", "hue_error", "kernel_distance", "labelled_distances",
           "mean_squared_distance", "ssim", "target_accuracy", "transport_cost"]
