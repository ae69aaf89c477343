"""AWS Lambda entry point: S3 upload notifications in, thumbnails under THUMBNAIL_PREFIX out.

Settings, logger and S3 client are built once per execution environment (cold start); an invalid
setting fails there, with a message naming the variable. Each invocation's S3 calls fit in the
time Lambda leaves it (the context's remaining time).
"""

import os

from thumbnailer.logs import get_logger
from thumbnailer.pipeline import handle_event
from thumbnailer.settings import Settings
from thumbnailer.storage import Deadline, S3Storage

SETTINGS = Settings.from_env(os.environ)
LOGGER = get_logger(SETTINGS.log_level)
STORAGE = S3Storage()
STORAGE.prepare()


def lambda_handler(event, context):
    """Bring the thumbnail of every object the S3 event names up to date with it."""
    storage = STORAGE.within(Deadline.from_context(context))
    return handle_event(event, storage, SETTINGS, LOGGER, getattr(context, "aws_request_id", None))
