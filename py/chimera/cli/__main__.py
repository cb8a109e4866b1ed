import sys

from chimera.cli.main import main

sys.exit(main())
