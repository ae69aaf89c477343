"""The third-party images committed to fixtures/images/ are byte for byte the files they came from."""

import hashlib

import pytest

from fixtures.make_fixtures import THIRD_PARTY
from harness.fixtures import image_bytes

# fixtures/make_fixtures.py names each origin as "<archive> (<registry, licence>), <folder>/<path>";
# the corpus keeps each archive's files under <source>/<folder without its top level>/<path>.
CORPUS_PATHS = {
    "Pillow 13.0.0 sdist": "pillow/images/",
    "pillow-heif 1.8.1 sdist": "pillow-heif/images/",
}


@pytest.mark.parametrize("item", THIRD_PARTY, ids=lambda item: item.name)
def test_committed_third_party_image_is_the_file_of_its_origin(item, corpus_manifest):
    archive, _, path = item.origin.partition("), ")
    folder = CORPUS_PATHS[archive.split(" (")[0]]
    relative = folder + path.split("/", 2)[-1]
    by_path = {entry["path"]: entry["sha256"] for entry in corpus_manifest["files"]}

    assert by_path.get(relative) == item.sha256, f"{item.name}: {relative} in the corpus has another sha256"
    assert hashlib.sha256(image_bytes(item.name)).hexdigest() == item.sha256
