"""dSprites: the latent grid and index order exactly as published, rendering geometry, the lazy generator and the
npz loader."""

import numpy as np
import pytest

from dreamlab.data import (
    DSPRITES_LATENT_NAMES,
    DSPRITES_LATENT_SIZES,
    DSPRITES_LATENT_VALUES,
    DSPRITES_NUM_IMAGES,
    DSprites,
    class_index,
    index_to_classes,
    latent_values,
    render_classes,
    render_dsprite,
)


def centroid(image: np.ndarray) -> tuple[float, float]:
    """(row, column) centroid in continuous image coordinates: pixel (i, j) has its centre at (i + 0.5, j + 0.5)."""
    rows, cols = np.nonzero(image)
    return rows.mean() + 0.5, cols.mean() + 0.5


def test_latent_grid_matches_published_definition():
    assert DSPRITES_LATENT_NAMES == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert DSPRITES_LATENT_SIZES == (1, 3, 6, 40, 32, 32)
    assert DSPRITES_NUM_IMAGES == 737_280
    color, shape, scale, orientation, pos_x, pos_y = DSPRITES_LATENT_VALUES
    np.testing.assert_array_equal(color, [1.0])
    np.testing.assert_array_equal(shape, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(scale, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert len(orientation) == 40 and orientation[0] == 0.0 and orientation[-1] == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(np.diff(orientation), 2 * np.pi / 39)
    for pos in (pos_x, pos_y):
        assert len(pos) == 32 and pos[0] == 0.0 and pos[-1] == 1.0
        np.testing.assert_allclose(np.diff(pos), 1 / 31)


def test_index_order_is_row_major_with_pos_y_fastest():
    # Stride of each latent: the product of the sizes of the latents after it.
    expected_strides = [3 * 6 * 40 * 32 * 32, 6 * 40 * 32 * 32, 40 * 32 * 32, 32 * 32, 32, 1]
    for latent, stride in enumerate(expected_strides):
        one_hot = [0] * 6
        if DSPRITES_LATENT_SIZES[latent] > 1:
            one_hot[latent] = 1
            assert class_index(one_hot) == stride, DSPRITES_LATENT_NAMES[latent]
    assert class_index([0, 2, 5, 39, 31, 31]) == DSPRITES_NUM_IMAGES - 1
    first = index_to_classes(np.arange(33))
    np.testing.assert_array_equal(first[:32, 5], np.arange(32))
    np.testing.assert_array_equal(first[32], [0, 0, 0, 0, 1, 0])
    rng = np.random.default_rng(0)
    indices = rng.integers(0, DSPRITES_NUM_IMAGES, (7, 5))
    classes = index_to_classes(indices)
    assert classes.shape == (7, 5, 6)
    np.testing.assert_array_equal(class_index(classes), indices)
    np.testing.assert_allclose(latent_values([0, 1, 5, 39, 0, 31]), [1.0, 2.0, 1.0, 2 * np.pi, 0.0, 1.0])


def test_bad_classes_and_indices_are_rejected():
    with pytest.raises(ValueError, match="scale"):
        class_index([0, 0, 6, 0, 0, 0])
    with pytest.raises(ValueError, match="last axis"):
        class_index([0, 0, 0])
    with pytest.raises(ValueError, match="out of range"):
        index_to_classes(DSPRITES_NUM_IMAGES)
    with pytest.raises(ValueError, match="shape"):
        render_dsprite("star", 1.0, 0.0, 0.5, 0.5)
    with pytest.raises(IndexError):
        DSprites.generated().images([-1])


@pytest.mark.parametrize("shape", ["square", "ellipse", "heart"])
def test_render_is_binary_and_area_grows_with_scale(shape):
    areas = []
    for scale in DSPRITES_LATENT_VALUES[2]:
        image = render_dsprite(shape, scale, 0.3, 0.5, 0.5)
        assert image.shape == (64, 64) and image.dtype == np.uint8
        assert set(np.unique(image)) == {0, 1}
        areas.append(int(image.sum()))
    assert np.all(np.diff(areas) > 0), areas
    # Area scales with scale^2 (up to rasterisation): the largest sprite is about 4x the smallest.
    assert 3.4 < areas[-1] / areas[0] < 4.6
    # The image size rescales the whole picture: a quarter of the pixels at half the size.
    small = render_dsprite(shape, 1.0, 0.3, 0.5, 0.5, size=32)
    assert small.shape == (32, 32) and small.sum() / areas[-1] == pytest.approx(0.25, rel=0.12)


@pytest.mark.parametrize("shape", ["square", "ellipse", "heart"])
def test_position_moves_centroid_right_and_down(shape):
    positions = DSPRITES_LATENT_VALUES[4]
    along_x = [centroid(render_dsprite(shape, 1.0, 0.0, p, 0.5)) for p in positions]
    along_y = [centroid(render_dsprite(shape, 1.0, 0.0, 0.5, p)) for p in positions]
    cols = np.array([c for _, c in along_x])
    rows = np.array([r for r, _ in along_y])
    assert np.all(np.diff(cols) > 0) and np.all(np.diff(rows) > 0)
    # posX does not move the sprite vertically, nor posY horizontally (up to sub-pixel resampling of the heart).
    assert np.ptp([r for r, _ in along_x]) < 0.5 and np.ptp([c for _, c in along_y]) < 0.5
    if shape != "heart":  # symmetric shapes: the pixel centroid is the position (16 + 32 p) to within rasterisation
        np.testing.assert_allclose(cols, 16 + 32 * positions, atol=0.5)
        np.testing.assert_allclose(rows, 16 + 32 * positions, atol=0.5)


@pytest.mark.parametrize("shape", ["square", "ellipse", "heart"])
def test_rotation_by_two_pi_is_identity_and_quarter_turns_behave(shape):
    for position in (0.0, 0.37, 1.0):
        base = render_dsprite(shape, 0.8, 0.0, position, 1 - position)
        np.testing.assert_array_equal(render_dsprite(shape, 0.8, 2 * np.pi, position, 1 - position), base)
    upright = render_dsprite(shape, 1.0, 0.0, 0.5, 0.5)
    quarter = render_dsprite(shape, 1.0, np.pi / 2, 0.5, 0.5)
    half = render_dsprite(shape, 1.0, np.pi, 0.5, 0.5)
    if shape == "square":  # 90-degree symmetry about the image centre (the position 0.5 is pixel 32)
        np.testing.assert_array_equal(quarter, upright)
    if shape == "ellipse":  # major axis horizontal at 0, vertical after a quarter turn
        rows, cols = np.nonzero(upright)
        assert np.ptp(cols) > 1.8 * np.ptp(rows)
        np.testing.assert_array_equal(quarter, upright.T)
    if shape == "heart":  # lobes up and point down at 0; a half turn points it up
        rows, _ = np.nonzero(upright)
        assert upright[rows.min() + 3].sum() > 1.5 * upright[rows.max() - 3].sum()
        np.testing.assert_array_equal(half, upright[::-1, ::-1])


def test_every_sprite_fits_inside_the_image_and_neighbouring_positions_differ():
    classes = np.array(
        [[0, s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)], dtype=np.int64
    )
    images = render_classes(classes)
    border = images[:, 0, :].sum() + images[:, -1, :].sum() + images[:, :, 0].sum() + images[:, :, -1].sum()
    assert border == 0
    # The published grid promises a different image for every latent step; check neighbouring positions.
    base = np.array([[0, s, 0, o, x, 7] for s in range(3) for o in (0, 13) for x in range(31)])
    shifted = base.copy()
    shifted[:, 4] += 1
    assert np.all(np.any(render_classes(base) != render_classes(shifted), axis=(1, 2)))


def test_pixel_statistics_match_published_dataset():
    rng = np.random.default_rng(0)
    images = render_classes(index_to_classes(rng.integers(0, DSPRITES_NUM_IMAGES, 5000)))
    # Calibration target: the published images' mean 0.043 (for binary pixels the std, 0.202, follows from it).
    assert np.count_nonzero(images) / images.size == pytest.approx(0.043, abs=0.0015)


def test_generated_dataset_renders_lazily_and_consistently():
    data = DSprites.generated(cache_size=64)
    assert len(data) == DSPRITES_NUM_IMAGES
    indices = np.array([[5, 123_456], [700_000, 5]])
    images = data.images(indices)
    assert images.shape == (2, 2, 64, 64) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0, 0], images[1, 1])
    np.testing.assert_array_equal(images.reshape(-1, 64, 64), render_classes(index_to_classes(indices.reshape(-1))))
    np.testing.assert_array_equal(data.images(indices), images)  # served from the cache
    many = data.images(np.arange(1000))  # more than the cache holds: rendered directly
    np.testing.assert_array_equal(many[5], images[0, 0])
    assert len(data._cache) <= 64
    np.testing.assert_array_equal(data.latents_classes(indices), index_to_classes(indices))
    np.testing.assert_allclose(data.latents_values(1), [1.0, 1.0, 0.5, 0.0, 0.0, 1 / 31])
    classes = data.sample_classes(500, np.random.default_rng(3))
    assert classes.shape == (500, 6)
    assert np.all(classes >= 0) and np.all(classes < np.array(DSPRITES_LATENT_SIZES))
    assert len(np.unique(classes[:, 3])) > 30  # uniform over 40 orientations, not stuck
    np.testing.assert_array_equal(data.sample_classes(500, np.random.default_rng(3)), classes)
    np.testing.assert_array_equal(data.indices_of(classes), class_index(classes))


def test_from_npz_serves_the_file_and_rejects_bad_files(tmp_path):
    rng = np.random.default_rng(1)
    indices = np.sort(rng.choice(DSPRITES_NUM_IMAGES, 40, replace=False))
    classes = index_to_classes(indices)
    imgs = render_classes(classes)
    path = tmp_path / "dsprites_subset.npz"
    np.savez_compressed(path, imgs=imgs, latents_values=latent_values(classes), latents_classes=classes)
    data = DSprites.from_npz(path)
    assert len(data) == 40 and not data.is_full_grid
    np.testing.assert_array_equal(data.images([3, 0]), imgs[[3, 0]])
    np.testing.assert_array_equal(data.latents_classes(7), classes[7])
    np.testing.assert_allclose(data.latents_values([7]), latent_values(classes[[7]]))
    sampled = data.sample_classes(25, np.random.default_rng(0))
    np.testing.assert_array_equal(data.latents_classes(data.indices_of(sampled)), sampled)
    with pytest.raises(KeyError, match="not in"):
        data.indices_of(index_to_classes(np.setdiff1d(np.arange(100), indices)[0]))

    with pytest.raises(FileNotFoundError, match="no such dSprites file"):
        DSprites.from_npz(tmp_path / "absent.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt"):
        DSprites.from_npz(corrupt)
    no_classes = tmp_path / "no_classes.npz"
    np.savez(no_classes, imgs=imgs, latents_values=latent_values(classes))
    with pytest.raises(ValueError, match="latents_classes"):
        DSprites.from_npz(no_classes)
    wrong_rows = tmp_path / "wrong_rows.npz"
    np.savez(wrong_rows, imgs=imgs, latents_values=latent_values(classes)[:5], latents_classes=classes)
    with pytest.raises(ValueError, match="latents_values must be"):
        DSprites.from_npz(wrong_rows)
