"""Operator commands against the deployed stack on AWS, run from the repository root.

    python -m ops.redrive --help     # replay what the on-failure queue kept
    python -m ops.backfill --help    # thumbnails for objects that were there before the function
    python -m ops.uploads --help     # delete a stage's uploads, after asking

They need boto3 and AWS credentials (the usual chain; AWS_ENDPOINT_URL for LocalStack), and share
`ops.aws`: one way to build clients, to invoke the function and to log. They never import the
local harness (harness/).
"""
