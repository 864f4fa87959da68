from pixtrans.cli import main

raise SystemExit(main())
