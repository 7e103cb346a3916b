from gitops_edge.cli.main import main

raise SystemExit(main())
