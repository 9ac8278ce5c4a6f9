"""Image grids for reports: the grid writers live in translab.image_io (below every layer); re-exported here."""
from translab.image_io import grid_array, save_grid, save_images, to_uint8

__all__ = ["grid_array", "save_grid", "save_images", "to_uint8"]
