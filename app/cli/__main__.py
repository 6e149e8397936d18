"""`python -m app.cli ...`: the same as the `peft-planner` command."""

from app.cli import main

raise SystemExit(main())
