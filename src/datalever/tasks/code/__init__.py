"""The code task family: language models trained on source code written by contributors."""
