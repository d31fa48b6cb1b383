"""The old import path `customer_segmentation.eda`, kept for users' code: another name for `customer_segmentation.fit.eda`.

Not generated: the code lives in the training package (nbs/02_eda.ipynb exports it there). Importing this module gives that
one, the same object, so every name and every patch of it is shared."""
import sys
from .fit import eda as _module
sys.modules[__name__] = _module
