"""Painting segmentation results at any image size (the MaskCLIP demo's output)."""
from .label_overlay import make_palette, overlay_labels
from .legend import (LegendLayout, draw_legend, font_for, format_share,
                     legend_entries, legend_layout)

__all__ = ['draw_legend', 'font_for', 'format_share', 'legend_entries',
           'legend_layout', 'LegendLayout', 'make_palette', 'overlay_labels']
