"""The old import path `customer_segmentation.evaluate`, kept for users' code: a thin re-export of `customer_segmentation.fit.evaluate`.

Not generated: the code lives in the training package (nbs/04_evaluation.ipynb exports it there)."""
from .fit.evaluate import *  # noqa: F401,F403
from .fit.evaluate import __all__  # noqa: F401
