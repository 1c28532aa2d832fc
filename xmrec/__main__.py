from xmrec.cli import main

raise SystemExit(main())
