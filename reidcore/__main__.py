from reidcore.cli import main

raise SystemExit(main())
