"""A data source that is the user's own function (`data.source: example_data:diabetes`): scikit-learn's diabetes
table — ten baseline measurements of 442 patients and the disease's progression a year later — as a DataFrame."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import load_diabetes


def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
