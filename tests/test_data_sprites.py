"""Coloured sprites: every label is what the pixels show, condition vectors encode the labels, seeds reproduce."""

import numpy as np
import pytest

from dreamlab.data import COLOUR_RGB, ColouredSprites

# Area of each shape in units of half-size^2 (every shape is 2 half-sizes wide at orientation 0): square 2x2,
# ellipse with semi-axes 1 and 1/2, the sextic heart (3.662 / 1.1384^2, see shapes.py), equilateral triangle of side 2.
ANALYTIC_AREA = {"square": 4.0, "ellipse": np.pi / 2, "heart": 2.826, "triangle": np.sqrt(3.0)}


@pytest.fixture(scope="module")
def sprites():
    return ColouredSprites(600, seed=7)


def test_deterministic_from_seed(sprites):
    again = ColouredSprites(600, seed=7)
    np.testing.assert_array_equal(again.images, sprites.images)
    for name in sprites.attributes:
        np.testing.assert_array_equal(again.attributes[name], sprites.attributes[name])
    assert not np.array_equal(ColouredSprites(600, seed=8).images, sprites.images)


def test_labels_match_pixels(sprites):
    images, attrs, classes = sprites.images, sprites.attributes, sprites.attribute_classes
    assert images.shape == (600, 64, 64, 3) and images.dtype == np.uint8
    foreground = np.any(images != 0, axis=-1)
    areas = foreground.sum(axis=(1, 2))
    assert areas.min() > 20
    for i in range(len(images)):
        colour = COLOUR_RGB[classes["colour"][attrs["colour"][i]]]
        assert np.all(images[i][foreground[i]] == colour), i
    # Nothing touches the border, so no label is cut off.
    assert not foreground[:, [0, -1], :].any() and not foreground[:, :, [0, -1]].any()
    # Position classes: the mask centroid lies in the labelled band (centres 20/32/44 px +- 2, plus the heart's and
    # triangle's rasterisation offsets, well under the 8 px between band edges).
    for i in range(len(images)):
        r, c = np.nonzero(foreground[i])
        expected_col = 20 + 12 * attrs["x_position"][i]
        expected_row = 20 + 12 * attrs["y_position"][i]
        assert abs(c.mean() + 0.5 - expected_col) < 3.5 and abs(r.mean() + 0.5 - expected_row) < 3.5, i
    # Shape and size: the drawn area equals the shape's analytic area at the recorded half-size, and the size
    # classes are disjoint in area for every shape.
    half = sprites.factors["half_size"]
    for shape_class, shape in enumerate(classes["shape"]):
        members = attrs["shape"] == shape_class
        ratio = areas[members] / half[members] ** 2
        assert np.median(ratio) == pytest.approx(ANALYTIC_AREA[shape], rel=0.05), shape
        by_size = [areas[members & (attrs["size"] == s)] for s in range(3)]
        assert by_size[0].max() < by_size[1].min() and by_size[1].max() < by_size[2].min(), shape


def test_condition_vectors(sprites):
    multi_hot = sprites.multi_hot()
    assert multi_hot.shape == (600, 4 + 7 + 3 + 3 + 3) and multi_hot.dtype == np.float32
    np.testing.assert_array_equal(multi_hot.sum(axis=1), 5)
    names = sprites.condition_names()
    assert names[:4] == ["shape=square", "shape=ellipse", "shape=heart", "shape=triangle"]
    i = 11
    chosen = {name: sprites.attribute_classes[name][sprites.attributes[name][i]] for name in sprites.attributes}
    np.testing.assert_array_equal(sprites.condition_vector(**chosen), multi_hot[i])
    by_index = {name: int(sprites.attributes[name][i]) for name in sprites.attributes}
    np.testing.assert_array_equal(sprites.condition_vector(**by_index), multi_hot[i])
    with pytest.raises(ValueError, match="missing"):
        sprites.condition_vector(shape="heart")
    with pytest.raises(ValueError, match="unknown class"):
        sprites.condition_vector(**{**chosen, "colour": "purple"})
    with pytest.raises(ValueError, match="unknown attribute"):
        sprites.condition_vector(**chosen, texture="striped")


def test_other_sizes_and_backgrounds():
    small = ColouredSprites(20, seed=0, size=32, background=(40, 40, 40))
    assert small.images.shape == (20, 32, 32, 3)
    assert np.all(small.images[:, 0, 0] == 40)
    with pytest.raises(ValueError, match="equals a sprite colour"):
        ColouredSprites(5, background=(255, 0, 0))


def test_rotation_range_changes_only_orientation(sprites):
    upright = ColouredSprites(600, seed=7, rotation=0.0)
    np.testing.assert_array_equal(upright.factors["orientation"], 0.0)
    for name in sprites.attributes:
        np.testing.assert_array_equal(upright.attributes[name], sprites.attributes[name])
    for factor in ("half_size", "centre_x", "centre_y"):
        np.testing.assert_array_equal(upright.factors[factor], sprites.factors[factor])
    # An upright square is axis-aligned: its mask fills its bounding box exactly.
    square = np.flatnonzero(upright.attributes["shape"] == 0)[0]
    r, c = np.nonzero(np.any(upright.images[square] != 0, axis=-1))
    assert len(r) == (r.max() - r.min() + 1) * (c.max() - c.min() + 1)
    quarter = ColouredSprites(600, seed=7, rotation=90.0).factors["orientation"]
    np.testing.assert_allclose(quarter, sprites.factors["orientation"] / 4)
    for bad in (-1.0, 361.0):
        with pytest.raises(ValueError, match="rotation"):
            ColouredSprites(5, rotation=bad)
