"""Scrapy settings of a polite production crawler, plus the catalogue's own knobs.

Pipelines form a numbered ladder; the store-writing one is last and owns its session.
"""

from __future__ import annotations

from catalog import __version__

BOT_NAME = "mcp-catalog"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = f"mcp-catalog/{__version__} (+https://github.com/mcp-catalog/mcp-catalog; MCP server catalogue crawler)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_TIMEOUT = 30
# A catalogue page is kilobytes (ToolHive's whole registry under 2 MB): past this, the page is
# refused, not parsed (Scrapy's default allows 1 GB, and parsing JSON multiplies its size).
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
DOWNLOAD_WARNSIZE = 16 * 1024 * 1024
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
RETRY_BACKOFF_BASE = 2.0
RETRY_BACKOFF_MAX = 60.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
# Conditional requests (ETag / Last-Modified) through Scrapy's HTTP cache: an unchanged
# catalogue page costs a 304. The directory is set from CATALOG_CACHE_DIR by the crawl job.
HTTPCACHE_ENABLED = True
HTTPCACHE_POLICY = "scrapy.extensions.httpcache.RFC2616Policy"
HTTPCACHE_STORAGE = "scrapy.extensions.httpcache.FilesystemCacheStorage"
HTTPCACHE_IGNORE_SCHEMES = ["file"]
HTTPCACHE_DIR = "httpcache"
LOG_LEVEL = "ERROR"
# Scrapy logs a failed robots.txt fetch with a traceback; the page request reports the same failure.
LOG_FORMATTER = "crawler.logformat.QuietLogFormatter"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
# Items from one page are processed together; introspection has its own semaphore.
CONCURRENT_ITEMS = 64

# A catalogue's API key (Smithery's) is added below the HTTP cache, so it is never written into
# the cache nor carried by a redirect to another origin (crawler/middlewares.py).
DOWNLOADER_MIDDLEWARES = {"crawler.middlewares.CatalogueKeyMiddleware": 950}

ITEM_PIPELINES = {
    "crawler.pipelines.validate.ValidatePipeline": 100,
    "crawler.pipelines.deduplicate.DeduplicatePipeline": 200,
    "crawler.pipelines.skip_unchanged.SkipUnchangedPipeline": 300,
    "crawler.pipelines.introspect.IntrospectPipeline": 500,
    "crawler.pipelines.store.StorePipeline": 900,
}

# --- mcp-catalog settings (overridden from the CLI) ---
CATALOG_DATABASE_URL = None
CATALOG_INTROSPECT = True
CATALOG_INSTALL_SOURCES = ["curated"]
CATALOG_INTROSPECT_TIMEOUT = 30.0
CATALOG_INTROSPECT_CONCURRENCY = 8
CATALOG_INSTALL_TIMEOUT = 300.0
CATALOG_CACHE_DIR = None
CATALOG_SANDBOX = "auto"  # auto | bwrap | none (none needs --unsafe-no-sandbox)
CATALOG_COMMIT_EVERY = 25  # servers per transaction on PostgreSQL; SQLite commits each
CATALOG_FULL = False  # re-introspect everything and ignore updated_since
CATALOG_RESUME_RUN = 0  # the interrupted run a --resume continues
CATALOG_JOB = None  # shared by the runs of one `catalog crawl`
