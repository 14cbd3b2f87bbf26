"""``python -m sdelang``: the command line."""
from .cli import main

raise SystemExit(main())
