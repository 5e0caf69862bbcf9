"""Surface features of prompt texts: each column against a hand count."""

import numpy as np
import pytest

from v05.value.surface import SURFACE_FEATURES, surface_features

MCQ = "What is $\\frac{1}{2} + 0.25$?\n(A) 0.75\n(B) 1\nC. 3/4\n  D) none"


def test_each_feature_matches_a_hand_count():
    got = dict(zip(SURFACE_FEATURES, surface_features([MCQ])[0]))
    words = MCQ.split()
    assert got["log_chars"] == pytest.approx(np.log1p(len(MCQ)))
    assert got["log_words"] == pytest.approx(np.log1p(len(words)))  # 14 words
    assert got["log_lines"] == pytest.approx(np.log1p(5))
    assert got["log_numbers"] == pytest.approx(np.log1p(7))  # 1, 2, 0.25, 0.75, 1, 3, 4
    assert got["digit_share"] == pytest.approx(sum(c.isdigit() for c in MCQ) / len(MCQ))
    assert got["log_math"] == pytest.approx(np.log1p(2))  # + and /
    assert got["log_latex"] == pytest.approx(np.log1p(3))  # \frac and two $
    assert got["n_options"] == 4  # (A) (B) C. D)
    assert got["log_questions"] == pytest.approx(np.log1p(1))
    assert got["mean_word_len"] == pytest.approx(sum(map(len, words)) / len(words))


def test_plain_text_empty_text_and_shapes():
    got = surface_features(["Alice has cats.", ""])
    assert got.shape == (2, len(SURFACE_FEATURES)) and got.dtype == np.float64
    plain = dict(zip(SURFACE_FEATURES, got[0]))
    assert plain["n_options"] == plain["log_numbers"] == plain["log_math"] == plain["log_latex"] == 0
    assert plain["mean_word_len"] == pytest.approx(13 / 3)
    np.testing.assert_array_equal(got[1], np.zeros(len(SURFACE_FEATURES)))
    assert surface_features([]).shape == (0, len(SURFACE_FEATURES))


def test_an_option_letter_inside_a_sentence_is_not_an_option():
    assert surface_features(["Plan A) is bad.\nOption (B) too"])[0, SURFACE_FEATURES.index("n_options")] == 0


def test_a_non_string_is_refused():
    with pytest.raises(TypeError, match="str texts; got int"):
        surface_features(["ok", 3])
