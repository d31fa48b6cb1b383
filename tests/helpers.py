"""What several test files share."""
import warnings

from customer_segmentation.deploy import score_csv


def score(inp, out, **kw):
    "score_csv with warnings recorded: (summary, [warning messages])."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        s = score_csv(inp, out, **kw)
    return s, [str(x.message) for x in w if issubclass(x.category, UserWarning)]
