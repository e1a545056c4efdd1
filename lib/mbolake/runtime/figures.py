"""How notebooks show plotly figures: as plotly's JSON (JupyterLab draws it) and as HTML with
plotly.js inline, so an executed notebook exported to HTML (nbconvert, Quarto) shows every
figure offline. ``mbolake.context()`` sets it in a notebook kernel.

plotly's own ``notebook`` renderer also links MathJax from a CDN in every figure (no figure
here uses LaTeX); offline that link is a console error, so the renderer here drops it.
"""
from __future__ import annotations

import re

RENDERER = "plotly_mimetype+mbolake_notebook"
_CDN_MATHJAX = re.compile(r'<script src="https://[^"]*mathjax[^"]*"></script>', re.IGNORECASE)


def in_notebook_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def offline_html(html: str) -> str:
    return _CDN_MATHJAX.sub("", html)


def register_renderer() -> None:
    import plotly.io as pio
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineNotebookRenderer(NotebookRenderer):
        def to_mimebundle(self, fig_dict):
            bundle = super().to_mimebundle(fig_dict)
            bundle["text/html"] = offline_html(bundle["text/html"])
            return bundle

    if "mbolake_notebook" not in pio.renderers:
        pio.renderers["mbolake_notebook"] = OfflineNotebookRenderer()


def use_embedded_figures() -> None:
    if not in_notebook_kernel():
        return
    import plotly.io as pio

    register_renderer()
    if pio.renderers.default != RENDERER:
        pio.renderers.default = RENDERER
