"""The old import path `customer_segmentation.evaluate`, kept for users' code: another name for `customer_segmentation.fit.evaluate`.

Not generated: the code lives in the training package (nbs/04_evaluation.ipynb exports it there). Importing this module gives that
one, the same object, so every name and every patch of it is shared."""
import sys
from .fit import evaluate as _module
sys.modules[__name__] = _module
