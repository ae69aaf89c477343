"""Every valid fixture's thumbnail against its reviewed golden in fixtures/golden/.

A failure writes build/golden-review/index.html (source, golden, new, amplified difference) and
names the command that accepts an intended change.
"""

import pytest

from harness.fixtures import VALID_IMAGES, image_bytes
from harness.golden import GOLDEN_DIR, NOT_GOLDENS, accept_command, assert_matches_golden
from thumbnailer import make_thumbnail

pytestmark = pytest.mark.golden


@pytest.mark.parametrize("name", sorted(VALID_IMAGES))
def test_thumbnail_matches_golden(name):
    source = image_bytes(name)
    assert_matches_golden(name, make_thumbnail(source).data, source_bytes=source)


def test_every_golden_belongs_to_a_valid_fixture():
    stale = sorted(
        path.name for path in GOLDEN_DIR.iterdir() if path.name not in set(VALID_IMAGES) | NOT_GOLDENS
    )
    assert not stale, f"goldens without a valid fixture image: {stale}; `{accept_command()}` removes them"
