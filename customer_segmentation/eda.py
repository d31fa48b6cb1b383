"""The old import path `customer_segmentation.eda`, kept for users' code: a thin re-export of `customer_segmentation.fit.eda`.

Not generated: the code lives in the training package (nbs/02_eda.ipynb exports it there)."""
from .fit.eda import *  # noqa: F401,F403
from .fit.eda import __all__  # noqa: F401
