"""FER+ reading, image loading of bad files, class folders and face augmentation, on real FER+ files."""
import cv2
import numpy as np
import pytest
import torch

from affect_sdk.errors import InputError
from affect_sdk.labels import CLASSES
from affect_sdk.vision.augment import AugmentConfig, augment_batch, gaussian_blur, mix_batch, webcam_augment
from affect_sdk.vision.data import FaceSet, ferplus_keep, load_image, read_ferplus, read_image_folder, to_input


def test_ferplus_test_split_gives_soft_labels_and_majority_labels(shared):
    data = read_ferplus(shared / "data/ferplus", "test", limit=40)
    assert data.images.shape == (40, 48, 48) and data.images.dtype == np.uint8
    assert np.allclose(data.soft.sum(1), 1.0)
    assert (data.labels == data.soft.argmax(1)).all()
    assert data.va_derived and data.va_targets.shape == (40, 2)


def test_images_whose_majority_is_unknown_or_not_a_face_are_left_out():
    votes = np.array([[6, 0, 0, 0, 0, 0, 0, 0, 4, 0],   # neutral wins
                      [2, 0, 0, 0, 0, 0, 0, 0, 6, 2],   # unknown wins -> out
                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face -> out
                      [3, 0, 0, 0, 0, 0, 0, 0, 3, 4]])  # NF wins -> out
    assert ferplus_keep(votes).tolist() == [True, False, False, False]


def _write(path, image):
    cv2.imwrite(str(path), image)
    return path


def test_bad_image_files_raise_one_clear_sentence_naming_the_file(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = _write(tmp_path / "good.png", np.full((48, 48), 128, np.uint8))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:40])
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    tiny = _write(tmp_path / "tiny.png", np.zeros((1, 1), np.uint8))
    for path in (empty, truncated, text, tiny, tmp_path / "missing.png"):
        with pytest.raises(InputError) as err:
            load_image(path)
        message = str(err.value)
        assert path.name in message and "\n" not in message


def test_rgba_16_bit_gray_and_huge_images_load_as_8_bit(tmp_path):
    rgba = load_image(_write(tmp_path / "rgba.png", np.full((30, 40, 4), 200, np.uint8)))
    assert rgba.shape == (30, 40, 3) and rgba.dtype == np.uint8
    deep = load_image(_write(tmp_path / "deep.png", np.full((20, 20), 65535, np.uint16)))
    assert deep.dtype == np.uint8 and deep.max() == 255
    assert load_image(_write(tmp_path / "gray.png", np.zeros((20, 20), np.uint8))).shape == (20, 20)
    huge = load_image(_write(tmp_path / "huge.png", np.zeros((8000, 8000), np.uint8)))
    assert huge.shape == (8000, 8000)


def test_class_folders_go_through_the_synonyms_and_unknown_names_are_refused(tmp_path):
    for name in ("angry", "happiness", "boredom"):
        (tmp_path / name).mkdir()
        _write(tmp_path / name / "a.png", np.zeros((48, 48), np.uint8))
    paths, labels, excluded = read_image_folder(tmp_path)
    assert [CLASSES[i] for i in labels] == ["anger", "happy"] and excluded == ["boredom"]
    (tmp_path / "sleepy").mkdir()
    with pytest.raises(InputError, match="sleepy"):
        read_image_folder(tmp_path)


def test_augmentation_keeps_range_and_size_and_is_seeded(shared):
    images = read_ferplus(shared / "data/ferplus", "valid", limit=16).images
    x = to_input(images, 48)
    a, flips_a = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1), size=56)
    b, flips_b = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1), size=56)
    assert a.shape == (16, 1, 56, 56) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b) and torch.equal(flips_a, flips_b)


def test_webcam_augmentation_degrades_faces_within_range_and_is_seeded(shared):
    x = to_input(read_ferplus(shared / "data/ferplus", "valid", limit=64).images, 48)
    cfg = webcam_augment(blur_prob=1.0, noise_prob=1.0, gamma_prob=1.0, lowres_prob=1.0, jpeg_prob=1.0, erase_prob=0)
    a, _ = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    b, _ = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    plain, _ = augment_batch(x, webcam_augment(blur_prob=0, noise_prob=0, gamma_prob=0, lowres_prob=0, jpeg_prob=0,
                                               erase_prob=0), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    # every image was changed by the degradations, not only a few
    assert ((a - plain).abs().flatten(1).mean(1) > 0.005).all()


def test_cutmix_pastes_a_partner_box_and_mixes_the_targets_by_its_area(shared):
    x = to_input(read_ferplus(shared / "data/ferplus", "valid", limit=32).images, 48)
    identity = torch.eye(32)  # a one-hot target per image shows whom each image was mixed with, and how much
    out, (mixed,) = mix_batch(x, [identity], torch.Generator().manual_seed(5), "cutmix", p=1.0)
    own_share = mixed.diagonal()
    partner = torch.where(own_share < 1, (mixed - torch.diag(own_share)).argmax(1), torch.arange(32))
    assert torch.allclose(mixed.sum(1), torch.ones(32))  # soft labels stay distributions
    pasted = (out != x).flatten(1).float().mean(1)
    assert (pasted > 0).sum() > 16  # most images got a box (p=1; a Beta(1,1) box may be clipped to nothing)
    for i in range(32):
        from_partner = out[i] == x[partner[i]]
        assert torch.all((out[i] == x[i]) | from_partner)  # each pixel is its own or its partner's
        # the target's partner share is the pasted box's area (pixels equal in both images count as either)
        assert 1 - own_share[i] >= pasted[i] - 1e-6 and 1 - own_share[i] <= from_partner.float().mean() + 1e-6


def test_mixup_blends_images_and_targets_alike_and_none_leaves_them_and_the_stream_alone(shared):
    x = to_input(read_ferplus(shared / "data/ferplus", "valid", limit=16).images, 48)
    identity = torch.eye(16)
    out, (mixed,) = mix_batch(x, [identity], torch.Generator().manual_seed(2), "mixup", p=1.0)
    again, _ = mix_batch(x, [identity], torch.Generator().manual_seed(2), "mixup", p=1.0)
    assert torch.equal(out, again)
    blend = mixed @ x.flatten(1)  # each image's target row says how its pixels were blended
    assert torch.allclose(out.flatten(1), blend, atol=1e-5)
    generator = torch.Generator().manual_seed(2)
    before = generator.get_state()
    same, (target,) = mix_batch(x, [identity], generator, "none")
    assert same is x and target is identity and torch.equal(generator.get_state(), before)
    with pytest.raises(ValueError, match="swirl"):
        mix_batch(x, [identity], generator, "swirl")


def test_gaussian_blur_keeps_mean_and_lowers_detail():
    x = torch.rand(4, 1, 48, 48)
    y = gaussian_blur(x, torch.tensor([0.5, 1.0, 1.5, 2.0]))
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.02)
    detail = (y[:, :, 1:] - y[:, :, :-1]).abs().mean(dim=(1, 2, 3))
    assert (detail[1:] < detail[:-1]).all() and (detail < (x[:, :, 1:] - x[:, :, :-1]).abs().mean()).all()


def test_real_va_labels_beside_label_csv_replace_the_derived_targets(shared, tmp_path):
    import shutil

    source = shared / "data/ferplus/FER2013Valid"
    split = tmp_path / "FER2013Valid"
    split.mkdir()
    rows = (source / "label.csv").read_text().splitlines()[:5]
    (split / "label.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        shutil.copy(source / row.split(",")[0], split)
    first = rows[0].split(",")[0]
    (split / "va.csv").write_text(f"image,valence,arousal\n{first},0.9,-0.3\n")
    data = read_ferplus(tmp_path, "valid")
    assert not data.va_derived
    assert np.allclose(data.va_targets[data.names.index(first)], [0.9, -0.3])
    derived = FaceSet(data.images, data.soft, data.labels, data.names).va_targets
    others = [i for i, n in enumerate(data.names) if n != first]
    assert np.allclose(data.va_targets[others], derived[others])


def test_half_occlusion_covers_the_mouth_or_the_eyes_and_leaves_the_rest(shared):
    x = to_input(read_ferplus(shared / "data/ferplus", "valid", limit=32).images, 48)
    off = dict(blur_prob=0, noise_prob=0, gamma_prob=0, lowres_prob=0, jpeg_prob=0, erase_prob=0)
    plain, _ = augment_batch(x, webcam_augment(**off), torch.Generator().manual_seed(7))
    mouth, _ = augment_batch(x, webcam_augment(half_occlusion_prob=1.0, lower_occlusion_share=1.0, **off),
                             torch.Generator().manual_seed(7))
    eyes, _ = augment_batch(x, webcam_augment(half_occlusion_prob=1.0, lower_occlusion_share=0.0, **off),
                            torch.Generator().manual_seed(7))
    rows = lambda img, a, b: img[:, 0, int(a * 48):int(b * 48), 6:42]  # noqa: E731  (inside the 12 % margins)
    assert torch.equal(rows(mouth, 0, 0.57), rows(plain, 0, 0.57))  # above the lowest cover: untouched
    assert (rows(mouth, 0.73, 1.0).flatten(1).std(1) < 0.06).all()  # below the highest: one shade and a grain
    assert (rows(mouth, 0.73, 1.0) != rows(plain, 0.73, 1.0)).flatten(1).float().mean(1).min() > 0.9
    assert torch.equal(rows(eyes, 0.56, 1.0), rows(plain, 0.56, 1.0))  # sunglasses leave the mouth alone
    changed = (rows(eyes, 0.25, 0.56) != rows(plain, 0.25, 0.56)).flatten(1).float().mean(1)
    assert (changed > 0.3).all()  # a band 12-20 % high, centred at 33-45 %, over every face
    again, _ = augment_batch(x, webcam_augment(half_occlusion_prob=1.0, lower_occlusion_share=1.0, **off),
                             torch.Generator().manual_seed(7))
    assert torch.equal(again, mouth)


def _small_valid_split(shared, root, count):
    import shutil

    source = shared / "data/ferplus/FER2013Valid"
    split = root / "FER2013Valid"
    split.mkdir(parents=True)
    rows = (source / "label.csv").read_text().splitlines()[:count]
    (split / "label.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        shutil.copy(source / row.split(",")[0], split)
    return root


def test_the_face_cache_serves_only_the_folder_it_was_read_from(shared, tmp_path):
    from affect_sdk.vision.data import cached_ferplus

    cache = tmp_path / "cache"
    first = _small_valid_split(shared, tmp_path / "a", 5)
    second = _small_valid_split(shared, tmp_path / "b", 3)
    names_a, names_b = read_ferplus(first, "valid").names, read_ferplus(second, "valid").names
    assert len(names_a) > len(names_b) > 0
    assert cached_ferplus(first, "valid", cache).names == names_a
    assert (cache / "ferplus_valid.npz").is_file() and cached_ferplus(first, "valid", cache).names == names_a
    assert cached_ferplus(second, "valid", cache).names == names_b  # not a's cached copy
    with pytest.raises(InputError, match="label.csv"):  # a wrong --data is one sentence, not the cached copy
        cached_ferplus(tmp_path / "missing", "valid", cache)
