"""Where nodes live. One module per runtime; docker.py is the only one today."""
