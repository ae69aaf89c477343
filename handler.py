"""AWS Lambda entry point: S3 upload notifications in, thumbnails under THUMBNAIL_PREFIX out.

Settings, logger and S3 client are built once per execution environment (cold start); an invalid
setting fails there, with a message naming the variable.
"""

import os

from thumbnailer.logs import get_logger
from thumbnailer.pipeline import handle_event
from thumbnailer.settings import Settings
from thumbnailer.storage import S3Storage, make_client

SETTINGS = Settings.from_env(os.environ)
LOGGER = get_logger(SETTINGS.log_level)
STORAGE = S3Storage(make_client())


def lambda_handler(event, context):
    """Create a thumbnail for every uploaded object the S3 event names."""
    return handle_event(event, STORAGE, SETTINGS, LOGGER, getattr(context, "aws_request_id", None))
