"""`python -m pdmpolicy`."""

from pdmpolicy.cli import main

raise SystemExit(main())
