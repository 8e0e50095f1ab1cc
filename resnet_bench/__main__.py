import sys

from resnet_bench.cli import main

sys.exit(main())
