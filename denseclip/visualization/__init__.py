"""Painting segmentation results at any image size (the MaskCLIP demo's output)."""
from .label_overlay import make_palette, overlay_labels
from .legend import draw_legend, font_for, legend_entries

__all__ = ['draw_legend', 'font_for', 'legend_entries', 'make_palette',
           'overlay_labels']
