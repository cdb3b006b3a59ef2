"""ContentGenre: known answers on a hand-made genre matrix, the K revealed items in the profile, one-line errors."""

import pytest
import torch

from recbole_tmcdr import run_recbole_cdr
from recbole_tmcdr.model.content_genre import content_scores, genre_profiles, neighbour_scores
from recbole_tmcdr.validation import ConfigError

from conftest import fast_config

# 4 items x 3 genres (Comedy, Drama, Horror)
GENRES = torch.tensor([[1., 0., 0.], [0., 1., 0.], [1., 1., 0.], [0., 0., 1.]])


def test_profile_sums_the_genres_of_the_users_items():
    profiles = genre_profiles(torch.tensor([0, 0, 1]), torch.tensor([0, 2, 3]), GENRES, 2)
    assert profiles.tolist() == [[2., 1., 0.], [0., 0., 1.]]


def test_cosine_scores_have_the_known_answer():
    # a user who watched two comedies: profile (2, 0, 0)
    scores = content_scores(torch.tensor([[2., 0., 0.], [0., 0., 0.]]), GENRES)
    expected = torch.tensor([[1., 0., 2 ** -0.5, 0.], [0., 0., 0., 0.]])
    assert torch.allclose(scores, expected)


def test_neighbour_scores_are_similarity_weighted_means_of_warm_items():
    warm_profiles = torch.tensor([[1., 0., 0.], [0., 1., 0.], [1., 1., 0.]])
    warm_items = torch.tensor([[1., 0.], [0., 1.], [1., 1.]])
    # profile (1, 0, 0): similarities 1, 0, 1/sqrt 2 -> item 0: (1 + .7071) / 1.7071 = 1, item 1: .7071 / 1.7071
    scores = neighbour_scores(torch.tensor([[1., 0., 0.]]), warm_profiles, warm_items, n_neighbours=3)
    s = 2 ** -0.5
    assert torch.allclose(scores, torch.tensor([[1., s / (1 + s)]]))
    # one neighbour: the most similar (user 0) alone
    assert torch.allclose(neighbour_scores(torch.tensor([[1., 0., 0.]]), warm_profiles, warm_items, 1),
                          torch.tensor([[1., 0.]]))


def test_content_model_runs_on_a_scenario_with_a_genres_file_and_uses_the_k_items(tiny_scenario):
    result = run_recbole_cdr(model='ContentGenre', config_file_list=[tiny_scenario], saved=False, config_dict=fast_config(
        content_item_file=str(tiny_scenario.parent / 'genres.csv'), content_neighbour_weight=0.5, kshot=[0, 3]))
    assert result['kshot_results'][0]['ndcg@10'] == result['test_result']['ndcg@10']
    assert 0 <= result['kshot_results'][3]['ndcg@10'] <= 1


def test_content_model_on_a_scenario_without_content_is_a_one_line_error(tiny_scenario):
    with pytest.raises(ConfigError, match=r"^ContentGenre needs item content, which the scenario 'tiny' \(type "
                                          r"'generic'\) does not have: .*content_item_file") as error:
        run_recbole_cdr(model='ContentGenre', config_file_list=[tiny_scenario], saved=False, config_dict=fast_config())
    assert '\n' not in str(error.value)


def test_every_user_with_source_items_has_a_profile_and_every_target_item_its_genres(pipeline, tiny_scenario):
    model = pipeline('ContentGenre', content_item_file=str(tiny_scenario.parent / 'genres.csv')).model
    source = model.source_profiles[model.warm_overlap_users]
    assert (source.sum(-1) > 0).all()
    assert (model.target_genres[1:].sum(-1) == 2).all()  # g<i % 5> and h<len % 2>: two genres per synthetic item
