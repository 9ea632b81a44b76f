import sys

from autofm.cli import main

sys.exit(main())
