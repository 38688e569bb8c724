import sys

from lambdaplane.cli import main

sys.exit(main())
