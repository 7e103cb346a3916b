from gitops_edge.cli import main

raise SystemExit(main())
