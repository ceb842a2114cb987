"""Item pipelines, one verb-named module each, ordered in ``crawler.settings.ITEM_PIPELINES``."""
