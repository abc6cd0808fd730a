"""The by-track validation split and its check (the CLI cases are in tests/cli/test_probes_bad_input.py)."""

import numpy as np
import pytest

from smitin.data import DataError
from smitin.holdout import check_split, split_by_group


def test_split_never_straddles_a_track():
    groups = np.repeat([f"t{i}" for i in range(10)], 5)
    val = split_by_group(groups, 0.3, seed=1)
    for g in np.unique(groups):
        assert len(set(val[groups == g])) == 1
    assert 0 < val.sum() < len(groups)
    with pytest.raises(ValueError, match="at least 2 tracks"):
        split_by_group(["a"] * 4)


def test_check_split_names_what_to_add():
    groups = np.repeat([f"t{i}" for i in range(6)], 4)
    labels = np.tile([0, 1], 12)
    val = check_split(labels, groups, val_fraction=0.34, seed=0)
    assert val.dtype == bool and set(labels[val]) == {0, 1} == set(labels[~val])
    one = np.where(groups == "t0", 1, 0)  # the trait in one track only
    with pytest.raises(
        DataError, match="1 track with the trait and 5 without it; .* add tracks with the trait"
    ):
        check_split(one, groups, source="stems")
    with pytest.raises(DataError, match="both classes"):
        check_split(np.zeros(24), groups)
