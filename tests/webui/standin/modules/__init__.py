"""Stand-in of the webui's `modules` package (see ../README.md)."""
