"Property tests for customer_segmentation.fit.eda on random synthetic data (no dataset needed)."
import numpy as np, pandas as pd, pytest
from customer_segmentation.fit.eda import (cramers_v, feature_association, missingness, conflicting_duplicates,
                                       bayes_ceiling, loo_group_accuracy, duplicate_summary)

def _frame(seed, n=400):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'ID': np.arange(n), 'f1': rng.choice(['a', 'b', None], n), 'f2': rng.integers(0, 3, n).astype(float),
                       'f3': rng.integers(0, 40, n),
                       'Segmentation': rng.choice(list('ABCD'), n)})
    df.loc[rng.random(n) < 0.1, 'f2'] = np.nan
    return df

@pytest.mark.parametrize('seed', range(5))
def test_cramers_v_range_and_symmetry(seed):
    df = _frame(seed)
    for bc in (True, False):
        v = cramers_v(df.f1, df.Segmentation, bias_correction=bc)
        assert 0 <= v <= 1
        assert v == pytest.approx(cramers_v(df.Segmentation, df.f1, bias_correction=bc))
    assert cramers_v(df.f1, df.Segmentation) <= cramers_v(df.f1, df.Segmentation, bias_correction=False)

@pytest.mark.parametrize('seed', range(5))
def test_ceiling_bounds(seed):
    df = _frame(seed)
    f = ['f1', 'f2', 'f3']  # ~480 combinations for 400 rows: singletons, agreeing and conflicting groups
    c = bayes_ceiling(df, features=f)
    majority = df.Segmentation.value_counts(normalize=True).max()
    assert majority <= c <= 1
    assert bayes_ceiling(df, features=['ID']) == 1.0  # unique rows: a lookup table memorises everything
    # removing the conflicting rows leaves groups with one label each, which a lookup table gets all right
    conf = conflicting_duplicates(df, features=f)
    assert 0 < len(conf) < len(df) and c < 1
    assert bayes_ceiling(df.drop(conf.index), features=f) == 1.0
    assert 0 <= loo_group_accuracy(df, features=f) <= 1
    s = duplicate_summary(df, features=f)
    assert s['rows'] == len(df) and s['rows_in_conflicting_groups'] == len(conf)
    assert s['distinct_feature_rows'] + s['redundant_rows'] == len(df)

def test_feature_association_and_missingness_shapes():
    df = _frame(0)
    fa = feature_association(df, features=['f1', 'f2'])
    assert list(fa.columns) == ['feature', 'kind', 'levels', 'cramers_v', 'mi_bits', 'uncertainty']
    assert fa.levels.tolist() == [3, 4] or fa.levels.tolist() == [4, 3]  # NaN counts as a level
    m = missingness(df)
    assert m.set_index('column').missing.to_dict() == df.isna().sum().to_dict()

def test_missing_is_the_one_level_of_data():
    "eda's missing level is data.MISSING, the level preprocess one-hot encodes too."
    from customer_segmentation.data import MISSING
    from customer_segmentation.fit.eda import as_levels, discretize
    assert MISSING == 'missing'
    assert as_levels([None, 'a']).tolist() == [MISSING, 'a']
    assert MISSING in set(discretize(pd.Series([1.0, np.nan])))
