"""``python -m stripe_sandbox --port 12111``"""

from .cli import main

main()
