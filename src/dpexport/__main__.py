"""``python -m dpexport``."""

from __future__ import annotations

from dpexport.cli import main

if __name__ == "__main__":
    main()
