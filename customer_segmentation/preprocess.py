"""The old import path `customer_segmentation.preprocess`, kept for users' code: a thin re-export of `customer_segmentation.fit.preprocess`.

Not generated: the code lives in the training package (nbs/03_preprocessing.ipynb exports it there)."""
from .fit.preprocess import *  # noqa: F401,F403
from .fit.preprocess import __all__  # noqa: F401
