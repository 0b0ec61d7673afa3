"""The Freqtrade strategy ``Avellaneda``: Avellaneda–Stoikov / GLFT market making. Its code is
the asmm package's (:mod:`asmm.freqtrade.strategy`); this file only names it for Freqtrade."""

from asmm.freqtrade.strategy import Avellaneda as _Avellaneda


class Avellaneda(_Avellaneda):
    """Freqtrade takes only a strategy class defined in the file it loads (its resolver
    checks ``__module__``), so this file subclasses the package's class, adding nothing."""
