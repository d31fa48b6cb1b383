"""The old import path `customer_segmentation.model`, kept for users' code: a thin re-export of `customer_segmentation.fit.model`.

Not generated: the code lives in the training package (nbs/05_modelling.ipynb exports it there)."""
from .fit.model import *  # noqa: F401,F403
from .fit.model import __all__  # noqa: F401
