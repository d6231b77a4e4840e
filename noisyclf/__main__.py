"""``python -m noisyclf`` runs the digits demo (see :mod:`noisyclf.demo`)."""

from .demo import main

if __name__ == "__main__":
    main()
