import sys

from translab.cli import main

sys.exit(main())
