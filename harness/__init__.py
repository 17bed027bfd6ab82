"""bctest: the harness a blockchain test & evaluation center runs to certify vendor chains."""

__version__ = "0.7.0"
