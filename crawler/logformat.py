"""Log formatting: dropped items are expected (duplicates, malformed entries), not warnings."""

from __future__ import annotations

import logging
from typing import Any

from scrapy.logformatter import LogFormatter


class QuietLogFormatter(LogFormatter):
    def dropped(self, item: Any, exception: BaseException, response: Any, spider: Any = None) -> Any:
        entry = super().dropped(item, exception, response, spider)
        entry["level"] = logging.DEBUG
        return entry
