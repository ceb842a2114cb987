"""The official MCP Registry (registry.modelcontextprotocol.io)."""

from crawler.spiders.registry_api import RegistryApiSpider


class OfficialRegistrySpider(RegistryApiSpider):
    name = "official-registry"
    default_base_url = "https://registry.modelcontextprotocol.io"
