"""User-supplied image data: IDX files, binarisation, attribute tables, image folders and the torch wrapper."""

import gzip

import cv2
import numpy as np
import pytest
import torch

from dreamlab.data import (
    ColouredSprites,
    DSprites,
    ImageFolder,
    ImageTensorDataset,
    binarize,
    load_mnist_idx,
    read_attribute_table,
    read_idx,
    write_idx,
)


def test_idx_round_trip_raw_and_gzip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    write_idx(tmp_path / "images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "labels-idx1-ubyte", labels)
    # The MNIST header: magic 0x00000803 then the three dimensions, big-endian.
    header = gzip.decompress((tmp_path / "images-idx3-ubyte.gz").read_bytes())[:16]
    assert header == bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28])
    loaded, loaded_labels = load_mnist_idx(tmp_path / "images-idx3-ubyte.gz", tmp_path / "labels-idx1-ubyte")
    np.testing.assert_array_equal(loaded, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    np.testing.assert_array_equal(load_mnist_idx(tmp_path / "images-idx3-ubyte.gz"), images)
    floats = rng.normal(size=(3, 4)).astype(np.float32)
    write_idx(tmp_path / "floats.idx", floats)
    np.testing.assert_array_equal(read_idx(tmp_path / "floats.idx"), floats)


def test_idx_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_mnist_idx(tmp_path / "absent")
    (tmp_path / "junk").write_bytes(b"\x12\x34\x56\x78" + b"\x00" * 20)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    write_idx(tmp_path / "images", np.zeros((4, 3, 3), dtype=np.uint8))
    truncated = tmp_path / "truncated"
    truncated.write_bytes((tmp_path / "images").read_bytes()[:-5])
    with pytest.raises(ValueError, match="needs 36"):
        read_idx(truncated)
    (tmp_path / "broken.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")[:-6])
    with pytest.raises(ValueError, match="corrupt gzip"):
        read_idx(tmp_path / "broken.gz")
    write_idx(tmp_path / "labels", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="3 labels but"):
        load_mnist_idx(tmp_path / "images", tmp_path / "labels")


def test_binarize():
    images = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(binarize(images), [[0, 0, 1, 1]])
    intensity = np.full((200, 200), 0.3)
    sample = binarize(intensity, rng=np.random.default_rng(1), stochastic=True)
    assert sample.dtype == np.float32 and set(np.unique(sample)) == {0.0, 1.0}
    assert sample.mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_array_equal(binarize(intensity, rng=np.random.default_rng(1), stochastic=True), sample)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarize(np.array([0.5, 1.5]))


def write_rgb(path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture
def celeba_folder(tmp_path):
    colours = {"000001.jpg": (255, 0, 0), "000002.jpg": (0, 255, 0), "000003.png": (0, 0, 255)}
    for name, colour in colours.items():
        image = np.zeros((30, 20, 3), dtype=np.uint8)
        image[5:25] = colour  # the centred 20x20 square a centre crop keeps
        write_rgb(tmp_path / name, image)
    table = tmp_path / "list_attr_celeba.txt"
    table.write_text("3\nSmiling Male \n000001.jpg  1 -1\n000002.jpg -1 -1\n000003.png  1  1\n")
    return tmp_path, table, colours


def test_celeba_attribute_table_and_folder(celeba_folder):
    root, table, colours = celeba_folder
    filenames, columns = read_attribute_table(table)
    assert filenames == ["000001.jpg", "000002.jpg", "000003.png"]
    assert columns == {"Smiling": ["1", "-1", "1"], "Male": ["-1", "-1", "1"]}
    folder = ImageFolder(root, 8, attributes=table)
    assert len(folder) == 3
    np.testing.assert_array_equal(folder.attributes["Smiling"], [1, 0, 1])
    assert folder.binary_attributes == {"Smiling", "Male"}
    np.testing.assert_array_equal(folder.multi_hot(), [[1, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(folder.condition_vector(Smiling="1", Male="-1"), [1, 0])
    images = folder.images([0, 1, 2])
    assert images.shape == (3, 8, 8, 3) and images.dtype == np.uint8
    # RGB channel order, and the centre crop kept only the coloured square (JPEG artefacts allow a few levels).
    for image, colour in zip(images, colours.values(), strict=True):
        np.testing.assert_allclose(image.reshape(-1, 3).mean(axis=0), colour, atol=16)
    only_male = ImageFolder(root, 8, attributes=table, attribute_names=["Male"])
    assert list(only_male.attributes) == ["Male"]
    with pytest.raises(ValueError, match="unknown attribute name"):
        ImageFolder(root, 8, attributes=table, attribute_names=["Bald"])
    assert len(ImageFolder(root, 8)) == 3  # no table: every image file, sorted


def test_attribute_table_errors(celeba_folder, tmp_path):
    root, table, _ = celeba_folder
    bad_count = tmp_path / "bad_count.txt"
    bad_count.write_text("4\nSmiling Male\n000001.jpg 1 -1\n")
    with pytest.raises(ValueError, match="header says 4"):
        read_attribute_table(bad_count)
    bad_row = tmp_path / "bad_row.txt"
    bad_row.write_text("1\nSmiling Male\n000001.jpg 1\n")
    with pytest.raises(ValueError, match="bad_row.txt:3"):
        read_attribute_table(bad_row)
    missing_image = tmp_path / "missing.txt"
    missing_image.write_text("1\nSmiling\n999999.jpg 1\n")
    with pytest.raises(FileNotFoundError, match="999999.jpg"):
        ImageFolder(root, 8, attributes=missing_image)
    with pytest.raises(FileNotFoundError, match="no such image folder"):
        ImageFolder(tmp_path / "nowhere", 8)
    (root / "000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="000002.jpg"):
        ImageFolder(root, 8, attributes=table).images([1])


def test_csv_categorical_attributes(celeba_folder):
    root, _, _ = celeba_folder
    table = root / "labels.csv"
    table.write_text("filename,style,year\n000001.jpg,Cubism,1910\n000002.jpg,Baroque,1650\n000003.png,Cubism,1650\n")
    folder = ImageFolder(root, 8, attributes=table)
    assert folder.attribute_classes == {"style": ["Baroque", "Cubism"], "year": ["1650", "1910"]}
    np.testing.assert_array_equal(folder.attributes["style"], [1, 0, 1])
    assert not folder.binary_attributes
    np.testing.assert_array_equal(folder.multi_hot(), [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 1, 0]])


def test_torch_dataset_scales_images_to_unit_range():
    sprites = ColouredSprites(4, seed=0)
    dataset = ImageTensorDataset(sprites.images, sprites.multi_hot())
    image, condition = dataset[2]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert image.max().item() == 1.0  # every sprite colour has a full 255 channel
    torch.testing.assert_close(condition, torch.from_numpy(sprites.multi_hot()[2]))
    dsprites = ImageTensorDataset(DSprites.generated(), dtype=torch.float64)
    binary = dsprites[123_456]
    assert binary.shape == (1, 64, 64) and binary.dtype == torch.float64
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="conditions must be"):
        ImageTensorDataset(sprites.images, np.zeros((3, 20)))
