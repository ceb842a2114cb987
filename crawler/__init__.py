"""The Scrapy project: spiders enumerate catalogues, pipelines introspect and store servers."""
