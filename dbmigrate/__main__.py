from dbmigrate.cli import main

raise SystemExit(main())
