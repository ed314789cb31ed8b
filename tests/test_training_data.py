"""Training data as users hand it over: uploads in separate folders, zips, a local folder; caps and messages."""

import stat
import zipfile

import pytest
from PIL import Image

from selfcascade.errors import InvalidRequest
from selfcascade.training.data import archive
from selfcascade.training.data import uploads as training_data
from selfcascade.training.data.images import sidecar_caption
from selfcascade.training.data.uploads import gather_training_images

from .bad_files import png_bytes, write_zip

SIZE = (128, 128)


def image(path, side=160, colour="red"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (side, side), colour).save(path)
    return str(path)


def test_uploads_from_separate_folders_pair_with_their_captions(tmp_path):
    # gradio keeps every upload in its own temporary folder: the caption is not beside its image
    uploads = [image(tmp_path / "a" / "cat.png"), str(tmp_path / "b" / "cat.txt"), image(tmp_path / "c" / "dog.jpg")]
    (tmp_path / "b" / "cat.txt").parent.mkdir()
    (tmp_path / "b" / "cat.txt").write_text("\ufeffa large red square\n")
    data = gather_training_images(uploads, "", tmp_path / "staging", SIZE)
    captions = {p.rsplit("/", 1)[1]: sidecar_caption(p) for p in data.images}
    assert captions == {"cat.png": "a large red square", "dog.jpg": None}
    assert data.describe() == "2 image(s), 1 with a caption of their own (.txt)"


def test_unusable_images_are_skipped_with_a_note(tmp_path):
    small = image(tmp_path / "small.png", side=64)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    other = tmp_path / "table.csv"
    other.write_text("1,2")
    data = gather_training_images([image(tmp_path / "good.png"), small, str(broken), str(other)], None,
                                  tmp_path / "staging", SIZE)
    assert [p.rsplit("/", 1)[1] for p in data.images] == ["good.png"]
    notes = " ".join(data.notes)
    assert "skipped table.csv: not an image" in notes and "skipped 2 image(s)" in notes
    assert "small.png is 64x64: smaller than the stage size" in notes and "broken.png is not an image" in notes


def test_a_local_folder_and_its_refusal_on_a_space(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    image(folder / "one.webp")
    (folder / "one.txt").write_text("a small blue circle")
    data = gather_training_images(None, f" {folder} ", tmp_path / "staging", SIZE)
    assert len(data.images) == 1 and sidecar_caption(data.images[0]) == "a small blue circle"
    with pytest.raises(InvalidRequest, match="no such folder"):
        gather_training_images(None, str(tmp_path / "nowhere"), tmp_path / "staging2", SIZE)
    monkeypatch.setattr(training_data, "ON_SPACE", True)
    with pytest.raises(InvalidRequest, match="only when you run the app on your own machine"):
        gather_training_images(None, str(folder), tmp_path / "staging3", SIZE)


def test_too_many_images_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "MAX_TRAINING_IMAGES", 2)
    uploads = [image(tmp_path / f"{i}.png") for i in range(3)]
    with pytest.raises(InvalidRequest, match="3 training images: at most 2 are accepted"):
        gather_training_images(uploads, None, tmp_path / "staging", SIZE)


def test_zip_caps_and_symlinks(tmp_path, monkeypatch):
    link = zipfile.ZipInfo("images/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("images/one.png", png_bytes())
        zipped.writestr(link, "/etc/passwd")  # a symlink entry: never followed, never written
        zipped.writestr("images/.hidden.png", png_bytes())
    notes = archive.unpack_training_zip(path, tmp_path / "out")
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["images/one.png"] and "link.png" in notes[0]
    monkeypatch.setattr(archive, "MAX_ZIP_ENTRIES", 2)
    many = write_zip(tmp_path / "many.zip", {f"{i}.png": png_bytes() for i in range(3)})
    with pytest.raises(InvalidRequest, match="holds 3 files: at most 2"):
        archive.unpack_training_zip(many, tmp_path / "out2")
    monkeypatch.setattr(archive, "MAX_ZIP_MB", 1)
    bomb = write_zip(tmp_path / "bomb.zip", {"big.png": bytes(3 * 2**20)})  # 3 MB of zeros, a few KB zipped
    with pytest.raises(InvalidRequest, match="unpacks to more than 1 MB"):
        archive.unpack_training_zip(bomb, tmp_path / "out3")


@pytest.mark.parametrize("name", ["../up.png", "a/../../up.png", "/abs.png", "C:\\windows.png", "a\\..\\..\\up.png"])
def test_a_zip_with_a_path_outside_its_folder_writes_nothing(tmp_path, name):
    path = write_zip(tmp_path / "evil.zip", {"fine.png": png_bytes(), name: png_bytes()})
    with pytest.raises(InvalidRequest, match="outside its own folder"):
        archive.unpack_training_zip(path, tmp_path / "out" / "inside")
    assert not any(p.is_file() for p in tmp_path.rglob("*.png"))


def test_a_damaged_entry_is_explained(tmp_path):
    path = tmp_path / "damaged.zip"
    write_zip(path, {"one.png": png_bytes()})
    data = bytearray(path.read_bytes())
    data[40:60] = bytes(20)  # inside the compressed data of the first entry
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidRequest, match="damaged.zip is damaged: one.png could not be unpacked"):
        archive.unpack_training_zip(path, tmp_path / "out")


def test_a_long_or_binary_caption_is_bounded(tmp_path):
    path = image(tmp_path / "one.png")
    (tmp_path / "one.txt").write_bytes(b"\xff\xfe" + b"x" * 100_000)
    assert len(sidecar_caption(path)) == 1000
