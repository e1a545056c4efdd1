"""mbolake: order-book ML on Databento MBO data, from Bronze to a served model.

Notebooks use three names from here: ``Param`` to declare parameters, ``params`` to
resolve and validate them, and ``context`` for the profile and the Spark session.
"""
from .runtime.context import Context, context
from .runtime.params import Param, ParameterError, params

__version__ = "0.1.0"
__all__ = ["Context", "context", "Param", "ParameterError", "params", "__version__"]
