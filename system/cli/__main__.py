import sys

from system.cli.main import main

sys.exit(main())
